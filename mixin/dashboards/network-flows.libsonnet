local g = import 'grafana.libsonnet';
local sentSum = g.select('execflow_tcp_sendmsg_bytes_sum');
local sentCount = g.select('execflow_tcp_sendmsg_bytes_count');
local sentBucket = g.select('execflow_tcp_sendmsg_bytes_bucket');
local flowBytes = g.selectWorkload('execflow_tcp_sent_bytes_total');
local flowReceived = g.selectWorkload('execflow_tcp_received_bytes_total');
local flows = g.select('execflow_tcp_flows');
local folded = g.select('execflow_tcp_folded_flows');
local sentNote = '(execflow_tcp_sendmsg_bytes_sum: every byte, short-lived flows included)';
// Remote address and port under either label set: "10.0.0.9:443" per flow (dport),
// "10.0.0.9:443 out" per service edge (port, direction).
local peerLegend = '{{daddr}}:{{dport}}{{port}} {{direction}}';
local perFlowNote = 'Node totals come from the send-size histogram, which counts every byte; per-flow series (by destination, top talkers) miss flows that open and close between two scrapes.';

{
  grafanaDashboards+:: {
    'execflow-network-flows.json': g.dashboard(
      $._config,
      'execflow-network',
      'execflow / Network flows',
      'TCP bytes sent and received, per flow as configured in the TCP collector (a subset of saddr, sport, daddr, dport, port, direction, namespace, pod, container: per flow with sport and dport, per service edge with port and direction), and the size distribution of tcp_sendmsg calls; the namespace and pod variables narrow the per-flow panels.',
      [
        [
          g.stat('TCP sent',
                 'Bytes per second accepted by TCP send calls %s.' % sentNote,
                 g.query('sum(rate(%s[$__rate_interval]))' % sentSum),
                 unit='Bps'),
          g.stat('Sends / s',
                 'tcp_sendmsg calls per second that sent at least one byte.',
                 g.query('sum(rate(%s[$__rate_interval]))' % sentCount),
                 unit='ops'),
          g.stat('Live flows', 'Flows in the kernel flow map now.', g.query('sum(%s)' % flows)),
          g.stat('Folded flows',
                 'Flows reported under the "other" series because the TCP collector\'s max_series was reached.',
                 g.query('sum(%s)' % folded),
                 steps=[['orange', 1]]),
        ],
        [
          g.timeseries('Bytes sent by destination',
                       'Bytes per second per remote address and port: dport with the per-flow labels; the server\'s port and the direction (out: this node connected, in: it accepted) with the per-edge labels ("other": flows folded over max_series). ' + perFlowNote,
                       [g.query('sum by (daddr, dport, port, direction) (rate(%s[$__rate_interval]))' % flowBytes, legend=peerLegend)],
                       unit='Bps',
                       stacked=true),
          g.timeseries('Bytes sent by node',
                       'Bytes per second accepted by TCP send calls, per node %s.' % sentNote,
                       [g.query('sum by (instance) (rate(%s[$__rate_interval]))' % sentSum, legend='{{instance}}')],
                       unit='Bps'),
        ],
        [
          g.timeseries('Bytes received by peer',
                       'Bytes per second read by receive calls (MSG_PEEK excluded), per remote address and port: dport with the per-flow labels; the server\'s port and the direction with the per-edge labels ("other": flows folded over max_series). ' + perFlowNote,
                       [g.query('sum by (daddr, dport, port, direction) (rate(%s[$__rate_interval]))' % flowReceived, legend=peerLegend)],
                       unit='Bps',
                       stacked=true),
          g.bargauge('Top pods by bytes received',
                     'The 10 pods (namespace/pod) whose sockets read the most bytes per second now; the host has empty labels. ' + perFlowNote,
                     g.query('topk(10, sum by (namespace, pod) (rate(%s[$__rate_interval])))' % flowReceived,
                             legend='{{namespace}}/{{pod}}',
                             instant=true,
                             format='time_series'),
                     unit='Bps'),
        ],
        [
          g.table('Top talkers',
                  'The 10 flows (per-flow labels) or service edges (per-edge labels) that sent the most bytes over the time range. ' + perFlowNote,
                  [g.query('topk(10, sum by (instance, saddr, sport, daddr, dport, port, direction) (increase(%s[$__range])))' % flowBytes,
                           instant=true,
                           format='table')],
                  { excludeByName: { Time: true }, renameByName: { Value: 'bytes sent' } }) {
            fieldConfig+: { overrides: [g.byName('bytes sent', [{ id: 'unit', value: 'bytes' }])] },
          },
          g.bargauge('Top destinations',
                     'The 10 destinations that received the most bytes over the time range. ' + perFlowNote,
                     g.query('topk(10, sum by (daddr, dport, port, direction) (increase(%s[$__range])))' % flowBytes,
                             legend=peerLegend,
                             instant=true,
                             format='time_series'),
                     unit='bytes'),
        ],
        [
          g.bargauge('Top pods by bytes sent',
                     'The 10 pods (namespace/pod) whose sockets sent the most bytes per second now (a socket belongs to the workload that made it; the host has empty labels). ' + perFlowNote,
                     g.query('topk(10, sum by (namespace, pod) (rate(%s[$__rate_interval])))' % flowBytes,
                             legend='{{namespace}}/{{pod}}',
                             instant=true,
                             format='time_series'),
                     unit='Bps'),
          g.timeseries('Bytes sent by container',
                       "Bytes per second per namespace, pod and container (outside Kubernetes: the runtime's 12-digit container id). " + perFlowNote,
                       [g.query('topk(10, sum by (namespace, pod, container) (rate(%s[$__rate_interval])))' % flowBytes,
                                legend='{{namespace}}/{{pod}}/{{container}}')],
                       unit='Bps',
                       stacked=true),
        ],
        [
          g.custom('heatmap',
                   'Send size distribution',
                   'tcp_sendmsg calls per second in each size bucket (upper bound in bytes, powers of two).',
                   [g.query('sum by (le) (rate(%s[$__rate_interval]))' % sentBucket, legend='{{le}}', format='heatmap')],
                   w=24,
                   h=10) {
            fieldConfig+: {
              defaults+: {
                custom: { hideFrom: { legend: false, tooltip: false, viz: false }, scaleDistribution: { type: 'linear' } },
              },
            },
            options: {
              calculate: false,
              cellGap: 1,
              color: {
                mode: 'scheme',
                scheme: 'Oranges',
                exponent: 0.5,
                fill: 'dark-orange',
                reverse: false,
                scale: 'exponential',
                steps: 64,
              },
              exemplars: { color: 'rgba(255,0,255,0.7)' },
              filterValues: { le: 1e-09 },
              legend: { show: true },
              rowsFrame: { layout: 'auto' },
              tooltip: { mode: 'single', showColorScale: false, yHistogram: true },
              yAxis: { axisPlacement: 'left', reverse: false, unit: 'bytes' },
              cellValues: { unit: 'ops' },
            },
          },
        ],
        [
          g.timeseries('Send size quantiles',
                       'Median and 99th percentile of bytes per tcp_sendmsg call (upper bounds of power-of-two buckets).',
                       [
                         g.query('histogram_quantile(0.5, sum by (le) (rate(%s[$__rate_interval])))' % sentBucket, legend='p50'),
                         g.query('histogram_quantile(0.99, sum by (le) (rate(%s[$__rate_interval])))' % sentBucket, legend='p99'),
                         g.query('sum(rate(%s[$__rate_interval])) / sum(rate(%s[$__rate_interval]))' % [sentSum, sentCount],
                                 legend='mean'),
                       ],
                       unit='bytes'),
          g.timeseries('Flows per node', 'Live flows in the kernel map and flows folded into "other", per node.', [
            g.query('sum by (instance) (%s)' % flows, legend='{{instance}} live'),
            g.query('sum by (instance) (%s)' % folded, legend='{{instance}} folded'),
          ]),
        ],
      ],
      workloads=true,
    ),
  },
}
