local g = import 'grafana.libsonnet';
local up = g.select('up');
// Node rates come from the recording rules (rules.libsonnet): one series per node, however
// many UIDs and errnos each has.
local execs = g.select('instance:execflow_execs:rate5m');
local failures = g.select('instance:execflow_exec_failures:rate5m');
local sent = g.select('instance:execflow_tcp_sendmsg_bytes_sum:rate5m');
local sentNote = '(execflow_tcp_sendmsg_bytes_sum: every byte, short-lived flows included)';
local recorded = 'Averaged over 5 minutes by a recording rule of deploy/prometheus/rules.yml.';
local perNode(metric, legend='{{instance}}') = g.query('sum by (instance) (%s)' % metric, legend=legend);
// up as words; down and up: extra fields of each value's mapping.
local upDown(down={}, up={}) =
  [{ type: 'value', options: { '0': { text: 'down' } + down + { index: 0 }, '1': { text: 'up' } + up + { index: 1 } } }];

{
  grafanaDashboards+:: {
    'execflow-fleet-overview.json': g.dashboard(
      $._config,
      'execflow-fleet',
      'execflow / Fleet overview',
      'Every node running execflow: is it up, how many programs it execs and how many bytes it sends over TCP. Rates come from the recording rules of deploy/prometheus/rules.yml, which Prometheus must load.',
      [
        [
          g.stat('Nodes up',
                 'Targets of the selected job that answered their last scrape.',
                 g.query('sum(%s)' % up),
                 w=4),
          g.stat('Nodes down',
                 'Targets of the selected job whose last scrape failed.',
                 g.query('sum(1 - %s)' % up),
                 steps=[['red', 1]],
                 w=4),
          g.stat('Execs / s',
                 'Successful execs per second on all selected nodes. ' + recorded,
                 g.query('sum(%s)' % execs),
                 unit='ops',
                 w=4),
          g.stat('Failed execs / s',
                 'Failed exec attempts per second on all selected nodes. ' + recorded,
                 g.query('sum(%s)' % failures),
                 unit='ops',
                 w=4),
          g.stat('TCP sent',
                 'Bytes per second accepted by TCP send calls on all selected nodes %s. %s' % [sentNote, recorded],
                 g.query('sum(%s)' % sent),
                 unit='Bps',
                 w=4),
          g.stat('Ring buffer drops',
                 "Exec events dropped because the ring buffer was full, over the dashboard's time range. Exec counts are unaffected.",
                 g.query('sum(increase(%s[$__range]))' % g.select('execflow_exec_events_dropped_total'), instant=true),
                 unit='short',
                 steps=[['orange', 1]],
                 w=4),
        ],
        [
          g.table(
            'Nodes',
            'One row per node: health and activity at the end of the time range. TCP bytes/s counts every byte sent (execflow_tcp_sendmsg_bytes_sum). Rates: ' + recorded,
            [
              g.query(expr, instant=true, format='table')
              for expr in [
                'max by (instance) (%s)' % up,
                'max by (instance, version, revision) (%s)' % g.select('execflow_build_info'),
                'sum by (instance) (%s)' % execs,
                'sum by (instance) (%s)' % failures,
                'sum by (instance) (%s)' % sent,
                'count by (instance) (%s)' % g.select('execflow_bpf_program_info'),
                'sum by (instance) (%s)' % g.select('execflow_scrape_duration_seconds'),
              ]
            ],
            {
              excludeByName: { Time: true, 'Value #B': true },
              renameByName: {
                'Value #A': 'up',
                'Value #C': 'execs/s',
                'Value #D': 'failed execs/s',
                'Value #E': 'TCP bytes/s',
                'Value #F': 'BPF programs',
                'Value #G': 'collect time',
              },
              indexByName: {
                instance: 0,
                'Value #A': 1,
                version: 2,
                revision: 3,
                'Value #C': 4,
                'Value #D': 5,
                'Value #E': 6,
                'Value #F': 7,
                'Value #G': 8,
              },
            },
            merge=true,
            w=24,
            h=9,
          ) {
            fieldConfig+: {
              overrides: [
                g.byName('execs/s', [{ id: 'unit', value: 'ops' }, { id: 'decimals', value: 2 }]),
                g.byName('failed execs/s', [{ id: 'unit', value: 'ops' }, { id: 'decimals', value: 2 }]),
                g.byName('TCP bytes/s', [{ id: 'unit', value: 'Bps' }]),
                g.byName('collect time', [{ id: 'unit', value: 's' }]),
                g.byName('up', [
                  { id: 'mappings', value: upDown({ color: 'red' }, { color: 'green' }) },
                  { id: 'custom.cellOptions', value: { type: 'color-background' } },
                ]),
              ],
            },
          },
        ],
        [
          g.timeseries('Execs per node', 'Successful execs per second, per node. ' + recorded, [perNode(execs)], unit='ops'),
          g.timeseries('TCP bytes sent per node',
                       'Bytes per second accepted by TCP send calls, per node %s. %s' % [sentNote, recorded],
                       [perNode(sent)],
                       unit='Bps'),
        ],
        [
          g.timeseries('Failed execs per node',
                       'Failed exec attempts per second, per node. ' + recorded,
                       [perNode(failures)],
                       unit='ops'),
          g.custom('state-timeline',
                   'Scrape health per node',
                   'Whether Prometheus could scrape each node (up).',
                   [g.query('max by (instance) (%s)' % up, legend='{{instance}}')]) {
            fieldConfig+: {
              defaults+: {
                color: { mode: 'thresholds' },
                thresholds: { mode: 'absolute', steps: [{ color: 'red', value: null }, { color: 'green', value: 1 }] },
                mappings: upDown(),
                custom: { fillOpacity: 70, lineWidth: 0 },
              },
            },
            options: {
              showValue: 'never',
              mergeValues: true,
              alignValue: 'left',
              rowHeight: 0.9,
              legend: { displayMode: 'list', placement: 'bottom', showLegend: false },
              tooltip: { mode: 'single', sort: 'none' },
            },
          },
        ],
      ],
    ),
  },
}
