{
  _config+:: {
    // PromQL label matchers, as written between {}, that pick execflow's scrape targets
    // out of everything Prometheus scrapes. `up` has a series for every target, so the
    // exporter-down alert needs them. The default is the job of
    // deploy/prometheus/prometheus.yml and of the Kubernetes ServiceMonitor.
    execflowSelector: 'job="execflow"',
  },
}
