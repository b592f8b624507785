// The files mixin/build.py writes, by path from the repository root: a .json path gets
// its value as JSON, any other path its text.
function(mixin=(import 'mixin.libsonnet'))
  local yaml(header, value) = header + std.manifestYamlDoc(value, indent_array_in_object=true, quote_keys=false) + '\n';
  {
    ['dashboards/' + name]: mixin.grafanaDashboards[name]
    for name in std.objectFields(mixin.grafanaDashboards)
  } + {
    'deploy/prometheus/alerts.yml': yaml(|||
      # Alerting rules for execflow, generated from mixin/ by mixin/build.py: edit those
      # files, not this one (docs/dashboards.md). Load it from prometheus.yml
      # (`rule_files:`) and check it with:
      #   promtool check rules deploy/prometheus/alerts.yml
      #   promtool test rules deploy/prometheus/alerts_test.yml
      #
      # Every rule keeps the `job` and `instance` labels of the node it is about, and
      # selects execflow's targets with %(execflowSelector)s (execflowSelector in
      # mixin/config.libsonnet).
    ||| % mixin._config, mixin.prometheusAlerts),
  }
