(import 'exec-activity.libsonnet') +
(import 'exporter-health.libsonnet') +
(import 'fleet-overview.libsonnet') +
(import 'network-flows.libsonnet')
