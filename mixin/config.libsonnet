{
  _config+:: {
    // PromQL label matchers, as written between {}, that pick execflow's scrape targets
    // out of everything Prometheus scrapes. Every alert and recording rule selects with
    // them, and the dashboards' job variable offers only the jobs they match. The
    // default is the job of deploy/prometheus/prometheus.yml and of the Kubernetes
    // ServiceMonitor and PodMonitor. Several jobs: 'job=~"execflow|execflow-canary"'.
    execflowSelector: 'job="execflow"',
  },
}
