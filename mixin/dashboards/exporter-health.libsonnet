local g = import 'grafana.libsonnet';
local rate(metric, by) = 'sum by (%s) (rate(%s[$__rate_interval]))' % [by, g.select(metric)];
local increase(metric, by) = 'sum by (%s) (increase(%s[$__rate_interval]))' % [by, g.select(metric)];
local byProgram = '{{instance}} {{program}}';
local byMap = '{{instance}} {{map}}';
local byCollector = '{{instance}} {{collector}}';

{
  grafanaDashboards+:: {
    'execflow-exporter-health.json': g.dashboard(
      $._config,
      'execflow-health',
      'execflow / Exporter health',
      'How execflow itself is doing: which hooks it attached, what its BPF programs cost, how full its kernel maps are, what it dropped and how long scrapes take.',
      [
        [
          g.table('Attach mode per node',
                  'Every BPF program attached on each node, with the hook and attach type chosen at start-up.',
                  [g.query('max by (instance, program, hook, attach_type) (%s)' % g.select('execflow_bpf_program_info'),
                           instant=true,
                           format='table')],
                  {
                    excludeByName: { Time: true, Value: true },
                    renameByName: { attach_type: 'attach type' },
                    indexByName: { instance: 0, program: 1, hook: 2, attach_type: 3 },
                  },
                  w=14,
                  h=9),
          g.table('Versions and event transport',
                  'execflow version and source revision per node. transport: how programs send events to the exporter (ringbuf, or perfbuf on kernels without ring buffers).',
                  [g.query('max by (instance, version, revision) (%s) * on (instance) group_left (transport) max by (instance, transport) (%s)'
                           % [g.select('execflow_build_info'), g.select('execflow_events_transport_info')],
                           instant=true,
                           format='table')],
                  { excludeByName: { Time: true, Value: true }, indexByName: { instance: 0, version: 1, revision: 2 } },
                  w=10,
                  h=9),
        ],
        [
          g.timeseries('BPF CPU time by program',
                       'CPU time spent in each BPF program, as a share of one CPU. Zero unless bpf.run_time_stats is on in the config.',
                       [g.query(rate('execflow_bpf_program_run_seconds_total', 'instance, program'), legend=byProgram)],
                       unit='percentunit'),
          g.timeseries('BPF time per run',
                       'Average run time of one invocation of each BPF program (needs bpf.run_time_stats).',
                       [g.query('%s / %s' % [
                                  rate('execflow_bpf_program_run_seconds_total', 'instance, program'),
                                  rate('execflow_bpf_program_runs_total', 'instance, program'),
                                ],
                                legend=byProgram)],
                       unit='s'),
        ],
        [
          g.timeseries('BPF runs by program',
                       'Invocations per second of each BPF program (needs bpf.run_time_stats).',
                       [g.query(rate('execflow_bpf_program_runs_total', 'instance, program'), legend=byProgram)],
                       unit='ops'),
          g.bargauge('Map fill',
                     'Entries in each kernel map as a share of its capacity. Over 90% alerts (ExecflowBPFMapNearCapacity).',
                     g.query('max by (instance, map) (%s / (%s > 0))'
                             % [g.select('execflow_bpf_map_entries'), g.select('execflow_bpf_map_capacity')],
                             legend=byMap,
                             instant=true),
                     unit='percentunit',
                     steps=[['orange', 0.75], ['red', 0.9]]) {
            fieldConfig+: { defaults+: { min: 0, max: 1 } },
          },
        ],
        [
          g.timeseries('Map entries',
                       'Entries in each kernel map.',
                       [g.query('sum by (instance, map) (%s)' % g.select('execflow_bpf_map_entries'), legend=byMap)]),
          g.timeseries('Map update failures',
                       'Failed inserts into kernel maps per second (usually a full map); what failed went to "other" or was lost.',
                       [g.query(rate('execflow_bpf_map_update_failures_total', 'instance, map'), legend=byMap)],
                       unit='ops'),
        ],
        [
          g.timeseries('Ring buffer',
                       'Exec events delivered through the ring buffer and events dropped because it was full, per second.',
                       [
                         g.query(rate('execflow_exec_events_total', 'instance'), legend='{{instance}} delivered'),
                         g.query(rate('execflow_exec_events_dropped_total', 'instance'), legend='{{instance}} dropped'),
                       ],
                       unit='ops') {
            fieldConfig+: {
              overrides: [g.byRegexp('.* dropped', [{ id: 'color', value: { mode: 'fixed', fixedColor: 'red' } }])],
            },
          },
          g.timeseries('Overflow series',
                       'What no longer fits the kernel maps or max_series: execs counted under uid="other" per second (0 while the UID map has room; the series exists only after an overflow), and TCP flows folded into "other".',
                       [
                         g.query('sum by (instance) (rate(%s[$__rate_interval])) or 0 * sum by (instance) (%s)'
                                 % [g.select('execflow_execs_total', 'uid="other"'), g.select('execflow_build_info')],
                                 legend='{{instance}} execs as uid=other /s'),
                         g.query('sum by (instance) (%s)' % g.select('execflow_tcp_folded_flows'),
                                 legend='{{instance}} folded TCP flows'),
                       ]),
        ],
        [
          g.timeseries('Collect time by collector',
                       'Time each collector spent building its metrics at the last scrape.',
                       [g.query('max by (instance, collector) (%s)' % g.select('execflow_scrape_duration_seconds'),
                                legend=byCollector)],
                       unit='s'),
          g.timeseries('Unresolved workloads',
                       "Cgroup ids seen since the last cgroupfs walk that it did not find (execflow_workload_unresolved_cgroups): their namespace, pod and container labels are empty. Stays above zero when the host's cgroup v2 hierarchy is not mounted (docs: workloads).",
                       [g.query('max by (instance) (%s)' % g.select('execflow_workload_unresolved_cgroups'),
                                legend='{{instance}}')],
                       unit='short'),
        ],
        [
          g.timeseries('Scrape errors by collector',
                       'Kernel map reads that failed while collecting (execflow_scrape_errors_total); the scrape returned what it could.',
                       [g.query(increase('execflow_scrape_errors_total', 'instance, collector'), legend=byCollector)],
                       unit='short'),
          g.timeseries('TCP flows closed and close notices lost',
                       'Flows whose final totals left the kernel map at close, per second; close notices lost to a full ring buffer leave entries behind until restart.',
                       [
                         g.query(rate('execflow_tcp_flows_closed_total', 'instance'), legend='{{instance}} closed'),
                         g.query(rate('execflow_tcp_close_events_dropped_total', 'instance'), legend='{{instance}} notices lost'),
                       ],
                       unit='ops'),
        ],
        [
          g.timeseries('BPF runs skipped, sends and receives uncounted',
                       'Runs the kernel skipped (the program was already running on that CPU, or, for kprobe and tracepoint programs, another such program or a BPF map syscall was: execflow_bpf_program_misses_total), and TCP sends kprobe mode could not follow: its kretprobe missed the return, or its in-flight map was full (execflow_tcp_sends_uncounted_total, and the same for receives: execflow_tcp_receives_uncounted_total): their execs or bytes were not counted. Should stay at zero.',
                       [
                         g.query(increase('execflow_bpf_program_misses_total', 'instance, program'), legend=byProgram),
                         g.query(increase('execflow_tcp_sends_uncounted_total', 'instance, reason'),
                                 legend='{{instance}} tcp sends uncounted: {{reason}}'),
                         g.query(increase('execflow_tcp_receives_uncounted_total', 'instance, reason'),
                                 legend='{{instance}} tcp receives uncounted: {{reason}}'),
                       ],
                       unit='short',
                       w=24),
        ],
      ],
    ),
  },
}
