// execflow's monitoring mixin: grafanaDashboards, prometheusAlerts and prometheusRules
// from one configuration (config.libsonnet). mixin/build.py writes them out.
(import 'config.libsonnet') +
(import 'alerts.libsonnet') +
(import 'rules.libsonnet') +
(import 'dashboards/dashboards.libsonnet')
