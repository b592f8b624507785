local g = import 'grafana.libsonnet';
local execs = g.select('execflow_execs_total');
local failures = g.select('execflow_exec_failures_total');

{
  grafanaDashboards+:: {
    'execflow-exec-activity.json': g.dashboard(
      $._config,
      'execflow-exec',
      'execflow / Exec activity',
      'Successful execs per UID and failed exec attempts per UID and errno, counted in the kernel.',
      [
        [
          g.stat('Execs / s',
                 'Successful execs per second.',
                 g.query('sum(rate(%s[$__rate_interval]))' % execs),
                 unit='ops'),
          g.stat('Failed execs / s',
                 'Failed exec attempts (execve/execveat returned an error) per second.',
                 g.query('sum(rate(%s[$__rate_interval]))' % failures),
                 unit='ops'),
          g.stat('Failure ratio',
                 'Failed exec attempts as a share of all exec attempts.',
                 g.query('sum(rate(%(f)s[$__rate_interval])) / (sum(rate(%(f)s[$__rate_interval])) + sum(rate(%(e)s[$__rate_interval])))'
                         % { f: failures, e: execs }),
                 unit='percentunit',
                 steps=[['orange', 0.1]]),
          g.stat('UIDs seen',
                 'Distinct UIDs that exec\'d during the time range ("other" counts as one).',
                 g.query('count(count by (uid) (increase(%s[$__range]) > 0))' % execs, instant=true)),
        ],
        [
          g.timeseries('Execs by UID',
                       'Successful execs per second per UID. uid="other" holds execs of UIDs beyond the kernel map\'s capacity.',
                       [g.query('sum by (uid) (rate(%s[$__rate_interval]))' % execs, legend='uid {{uid}}')],
                       unit='ops',
                       stacked=true),
          g.timeseries('Failed execs by errno',
                       'Failed exec attempts per second by the error returned (ENOENT: no such file, EACCES: permission denied, ...).',
                       [g.query('sum by (errno) (rate(%s[$__rate_interval]))' % failures, legend='{{errno}}')],
                       unit='ops',
                       stacked=true),
        ],
        [
          g.bargauge('Top UIDs',
                     'The 10 UIDs with the most successful execs over the time range.',
                     g.query('topk(10, sum by (uid) (increase(%s[$__range])))' % execs,
                             legend='uid {{uid}}',
                             instant=true,
                             format='time_series'),
                     unit='short'),
          g.table('Top failing UIDs and errnos',
                  'The 10 (UID, errno) pairs with the most failed exec attempts over the time range.',
                  [g.query('topk(10, sum by (uid, errno) (increase(%s[$__range])))' % failures, instant=true, format='table')],
                  { excludeByName: { Time: true }, renameByName: { Value: 'failed execs' } }) {
            fieldConfig+: { overrides: [g.byName('failed execs', [{ id: 'decimals', value: 0 }])] },
          },
        ],
        [
          g.timeseries('Execs by node',
                       'Successful execs per second per node.',
                       [g.query('sum by (instance) (rate(%s[$__rate_interval]))' % execs, legend='{{instance}}')],
                       unit='ops',
                       w=24),
        ],
      ],
    ),
  },
}
