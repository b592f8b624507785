// Annotations are written as text blocks and folded into one line, as YAML's `>-` does.
local fold(text) = std.join(' ', std.split(std.rstripChars(text, '\n'), '\n'));
local alert(name, expr, forTime, severity, summary, description, runbook) = {
  alert: name,
  expr: expr,
  'for': forTime,
  labels: { severity: severity },
  annotations: { summary: summary, description: fold(description), runbook: fold(runbook) },
};

{
  prometheusAlerts+:: {
    groups+: [{
      name: 'execflow',
      // Every rule keeps the `job` and `instance` labels of the node it is about.
      rules: [
        alert(
          'ExecflowExporterDown',
          |||
            up{%(execflowSelector)s} == 0
          ||| % $._config,
          '5m',
          'critical',
          'execflow on {{ $labels.instance }} is down',
          |||
            Prometheus has not been able to scrape execflow on {{ $labels.instance }}
            (job {{ $labels.job }}) for 5 minutes: exec and TCP activity of this node
            is not being recorded.
          |||,
          |||
            Check the service (`systemctl status execflow`, `journalctl -u execflow`).
            The exporter exits at start-up when no hook variant attaches or the config
            is invalid; its log names the program, the hook and the errno. If it runs,
            check that `curl -s http://{{ $labels.instance }}/readyz` answers from the
            Prometheus host (firewall, --web.listen-address).
          |||,
        ),
        // The exporter answers scrapes but has no BPF program attached.
        alert(
          'ExecflowBPFProgramsNotAttached',
          |||
            execflow_build_info{%(execflowSelector)s} unless on (job, instance) execflow_bpf_program_info{%(execflowSelector)s}
          ||| % $._config,
          '5m',
          'critical',
          'execflow on {{ $labels.instance }} has no BPF program attached',
          |||
            execflow {{ $labels.version }} on {{ $labels.instance }} is up but exports
            no execflow_bpf_program_info series: nothing is being counted.
          |||,
          |||
            Read the exporter's start-up log: every rejected hook variant is logged
            with its errno (EPERM: missing CAP_BPF/CAP_PERFMON or lockdown;
            ENOENT: tracepoint or BTF missing). Check `bpftool prog show` on the node
            and restart the exporter once the cause is fixed.
          |||,
        ),
        // Counts distinct hooks, not programs, so a node that falls back from fexit (one
        // program) to kprobe+kretprobe (two programs on the same hook) or from tp_btf to
        // a classic tracepoint still compares equal.
        alert(
          'ExecflowBPFHooksBelowFleet',
          |||
            count by (job, instance) (count by (job, instance, hook) (execflow_bpf_program_info{%(execflowSelector)s}))
              < on (job) group_left
            max by (job) (count by (job, instance) (count by (job, instance, hook) (execflow_bpf_program_info{%(execflowSelector)s})))
          ||| % $._config,
          '15m',
          'warning',
          'execflow on {{ $labels.instance }} attached fewer hooks than other nodes',
          |||
            execflow on {{ $labels.instance }} has {{ $value }} hook(s) attached, fewer
            than other nodes of job {{ $labels.job }}: a collector failed to attach
            or is disabled in this node's config.
          |||,
          |||
            Compare the "Attach mode per node" table of the execflow exporter health
            dashboard with a healthy node. The exporter's start-up log lists every
            hook variant it tried and why each was rejected. If the config differs on
            purpose, put these nodes in a job of their own.
          |||,
        ),
        alert(
          'ExecflowRingBufferDrops',
          |||
            increase(execflow_exec_events_dropped_total{%(execflowSelector)s}[5m]) > 0
          ||| % $._config,
          '10m',
          'warning',
          'execflow on {{ $labels.instance }} drops exec events',
          |||
            {{ $value | humanize }} exec events were dropped in the last 5 minutes on
            {{ $labels.instance }} because the ring buffer was full. Exec counts stay
            exact (execflow_execs_total); only per-event records are lost.
          |||,
          |||
            The exec rate exceeds what user space drains. Raise the ring buffer size
            in the exporter config (a power of two, in bytes), or turn per-exec events
            off if nothing consumes them. Check the node's exec rate on the exec
            activity dashboard for a fork/exec storm.
          |||,
        ),
        alert(
          'ExecflowBPFMapNearCapacity',
          |||
            execflow_bpf_map_entries{%(execflowSelector)s} / execflow_bpf_map_capacity{%(execflowSelector)s} > 0.9
              and execflow_bpf_map_capacity{%(execflowSelector)s} > 0
          ||| % $._config,
          '15m',
          'warning',
          'execflow map {{ $labels.map }} on {{ $labels.instance }} is {{ $value | humanizePercentage }} full',
          |||
            The kernel map {{ $labels.map }} on {{ $labels.instance }} is over 90% full.
            When it is full, new keys are counted under "other" (UIDs, flows) and
            execflow_bpf_map_update_failures_total grows.
          |||,
          |||
            Raise the map's capacity in the exporter config and restart it, or lower
            the cardinality (fewer TCP flow labels). Each entry costs kernel memory:
            the config file documents the arithmetic per map.
          |||,
        ),
        alert(
          'ExecflowBPFMapUpdateFailures',
          |||
            increase(execflow_bpf_map_update_failures_total{%(execflowSelector)s}[5m]) > 0
          ||| % $._config,
          '5m',
          'warning',
          'execflow cannot insert into map {{ $labels.map }} on {{ $labels.instance }}',
          |||
            {{ $value | humanize }} updates of kernel map {{ $labels.map }} failed in the
            last 5 minutes on {{ $labels.instance }}; those events were counted
            under "other" or lost.
          |||,
          |||
            Usually the map is full: see ExecflowBPFMapNearCapacity and raise the
            capacity. If the map is not full, the exporter log names the errno.
          |||,
        ),
        alert(
          'ExecflowTCPFlowsFolded',
          |||
            execflow_tcp_folded_flows{%(execflowSelector)s} > 0
          ||| % $._config,
          '15m',
          'info',
          'execflow on {{ $labels.instance }} folds {{ $value }} TCP flows into "other"',
          |||
            {{ $labels.instance }} has more TCP flows than max_series allows, so
            {{ $value }} flows are reported in the series labelled "other": per-flow
            bytes of those flows are not visible.
          |||,
          |||
            Either accept it (totals stay exact), drop labels from the TCP collector
            config (for example sport, which is usually ephemeral), or raise
            max_series after checking Prometheus can take the extra series.
          |||,
        ),
        alert(
          'ExecflowScrapeSlow',
          |||
            sum by (job, instance) (execflow_scrape_duration_seconds{%(execflowSelector)s}) > 1
          ||| % $._config,
          '10m',
          'warning',
          'execflow on {{ $labels.instance }} takes {{ $value | humanizeDuration }} to collect',
          |||
            Collecting metrics on {{ $labels.instance }} took more than one second at
            every scrape for 10 minutes; near the scrape timeout, scrapes fail and
            the node goes blank.
          |||,
          |||
            See which collector is slow on the exporter health dashboard (scrape
            duration by collector). Large kernel maps cost time per entry: lower
            max_series or map capacities, or scrape less often.
          |||,
        ),
        alert(
          'ExecflowScrapeErrors',
          |||
            increase(execflow_scrape_errors_total{%(execflowSelector)s}[10m]) > 0
          ||| % $._config,
          '10m',
          'warning',
          'execflow on {{ $labels.instance }} fails to read the {{ $labels.collector }} maps',
          |||
            {{ $value | humanize }} kernel map reads of the {{ $labels.collector }}
            collector failed in the last 10 minutes on {{ $labels.instance }}; its
            scrapes miss some series.
          |||,
          |||
            Run the exporter with --log.level=debug: each failed read is logged with
            the map and the errno. EPERM after a restart of the node's security
            tooling (LSM, seccomp) is the usual cause; restart the exporter.
          |||,
        ),
        alert(
          'ExecflowTCPCloseNoticesDropped',
          |||
            increase(execflow_tcp_close_events_dropped_total{%(execflowSelector)s}[10m]) > 0
          ||| % $._config,
          '5m',
          'warning',
          'execflow on {{ $labels.instance }} lost TCP flow close notices',
          |||
            {{ $value | humanize }} closed TCP flows on {{ $labels.instance }} could not
            be reported to user space in the last 10 minutes. Their bytes stay
            counted, but their kernel map entries are not freed until the exporter
            restarts, so the flow map fills.
          |||,
          |||
            The node closes connections faster than the exporter drains the close
            notices, often during a slow scrape of a large flow map. Lower tcp.max_series
            or drop sport from tcp.labels to make scrapes cheaper; restart the
            exporter to free the leaked entries.
          |||,
        ),
        alert(
          'ExecflowBPFProgramMisses',
          |||
            increase(execflow_bpf_program_misses_total{%(execflowSelector)s}[10m]) > 0
          ||| % $._config,
          '0m',
          'warning',
          'execflow program {{ $labels.program }} on {{ $labels.instance }} skipped runs',
          |||
            The kernel skipped {{ $value | humanize }} runs of {{ $labels.program }} on
            {{ $labels.instance }} in the last 10 minutes (it was already running on that
            CPU, or, for kprobe and tracepoint programs, another such program or a BPF map
            syscall was); the execs or bytes of those runs are missing from the counters.
          |||,
          |||
            Check which hook the program uses (exporter health dashboard, attach mode).
            Kernels that preempt kernel code (Debian's 7.x) reach both: a program preempted
            on its CPU (fexit, tp_btf) skips its next run there, and any process preempted
            inside a BPF map syscall stops kprobe and tracepoint programs there. No hook
            avoids it on such kernels; fexit and tp_btf skip least (only their own re-entry).
          |||,
        ),
        alert(
          'ExecflowTCPSendsUncounted',
          |||
            increase(execflow_tcp_sends_uncounted_total{%(execflowSelector)s}[10m]) > 0
          ||| % $._config,
          '0m',
          'warning',
          'execflow on {{ $labels.instance }} could not count TCP sends ({{ $labels.reason }})',
          |||
            The bytes of {{ $value | humanize }} TCP send calls on {{ $labels.instance }}
            in the last 10 minutes are missing from execflow_tcp_sent_bytes_total:
            kprobe mode's kretprobe missed their returns (kretprobe_missed: more calls
            were in flight at once than it follows) or its map of sends in flight was
            full (inflight_map_full).
          |||,
          |||
            Many threads block in tcp_sendmsg at once on this node (slow peers, full
            send buffers). Use the fexit or tracepoint hook (tcp.hook) where the kernel
            has one: docs/kernels.md says which kernels do.
          |||,
        ),
        alert(
          'ExecflowTCPReceivesUncounted',
          |||
            increase(execflow_tcp_receives_uncounted_total{%(execflowSelector)s}[10m]) > 0
          ||| % $._config,
          '0m',
          'warning',
          'execflow on {{ $labels.instance }} could not count TCP receives ({{ $labels.reason }})',
          |||
            The bytes of {{ $value | humanize }} TCP receive calls on {{ $labels.instance }}
            in the last 10 minutes are missing from execflow_tcp_received_bytes_total:
            kprobe mode's kretprobe missed their returns (kretprobe_missed) or its map
            of receives in flight was full (inflight_map_full).
          |||,
          |||
            Receives that wait for data hold a kretprobe instance meanwhile, so many idle
            readers exhaust them. Use the fexit or tracepoint hook (tcp.receive_hook)
            where the kernel has one: docs/kernels.md says which kernels do.
          |||,
        ),
      ],
    }],
  },
}
