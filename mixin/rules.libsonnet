{
  // sum by (job, instance) (rate(METRIC{selector}[5m])) recorded as RECORD.
  local rate(record, metric) = {
    record: record,
    expr: |||
      sum by (job, instance) (rate(%s{%s}[5m]))
    ||| % [metric, $._config.execflowSelector],
  },

  // Per-node rates that the fleet overview dashboard reads: one series per node instead
  // of one per UID (execs) or per UID and errno (failures), so that a fleet-wide panel
  // costs the same with a thousand UIDs per node as with one.
  prometheusRules+:: {
    groups+: [{
      name: 'execflow.rules',
      rules: [
        rate('instance:execflow_execs:rate5m', 'execflow_execs_total'),
        rate('instance:execflow_exec_failures:rate5m', 'execflow_exec_failures_total'),
        // Bytes per second accepted by tcp_sendmsg: the send-size histogram's sum counts
        // every byte, short-lived flows included.
        rate('instance:execflow_tcp_sendmsg_bytes_sum:rate5m', 'execflow_tcp_sendmsg_bytes_sum'),
      ],
    }],
  },
}
