// Builders for the Grafana JSON of execflow's dashboards, in plain jsonnet (grafonnet is
// not packaged in Debian). They cover what the dashboards use and nothing more: every
// panel and query reads the `datasource` variable, and rows of panels are laid out left
// to right, top to bottom.
local datasource = { type: 'prometheus', uid: '${datasource}' };

local thresholds(steps) = {
  mode: 'absolute',
  steps: [{ color: 'green', value: null }] + [{ color: s[0], value: s[1] } for s in steps],
};

local panel(type, title, description, targets, unit, w, h) = {
  type: type,
  title: title,
  description: description,
  datasource: datasource,
  targets: [targets[i] { refId: std.char(std.codepoint('A') + i) } for i in std.range(0, std.length(targets) - 1)],
  fieldConfig: {
    defaults: { [if unit != null then 'unit']: unit },
    overrides: [],
  },
  w:: w,
  h:: h,
};

local reduceOptions = { calcs: ['lastNotNull'], fields: '', values: false };

{
  // `metric{extra, job=~"$job", instance=~"$instance"}`: what every panel query selects.
  select(metric, extra=null)::
    '%s{%sjob=~"$job", instance=~"$instance"}' % [metric, if extra == null then '' else extra + ', '],

  // select() narrowed to the workloads the namespace and pod variables pick (metrics
  // with workload labels only; dashboard(..., workloads=true) has those variables).
  selectWorkload(metric, extra=null)::
    self.select(metric, (if extra == null then '' else extra + ', ') + 'namespace=~"$namespace", pod=~"$pod"'),

  // A PromQL query. Instant queries are evaluated once, at the end of the time range.
  query(expr, legend=null, instant=false, format=null):: {
    datasource: datasource,
    editorMode: 'code',
    expr: expr,
    instant: instant,
    range: !instant,
    [if legend != null then 'legendFormat']: legend,
    [if format != null then 'format']: format,
  },

  // One big number. steps: [[color, from value], ...] above the default green.
  stat(title, description, query, unit=null, steps=[], w=6, h=4)::
    panel('stat', title, description, [query], unit, w, h) {
      fieldConfig+: { defaults+: { color: { mode: 'thresholds' }, thresholds: thresholds(steps) } },
      options: {
        reduceOptions: reduceOptions,
        colorMode: 'value',
        graphMode: 'area',
        justifyMode: 'auto',
        orientation: 'auto',
        textMode: 'auto',
      },
    },

  // Lines over time; stacked ones are filled more, since their areas add up.
  timeseries(title, description, queries, unit=null, stacked=false, w=12, h=8)::
    panel('timeseries', title, description, queries, unit, w, h) {
      fieldConfig+: {
        defaults+: {
          custom: {
            drawStyle: 'line',
            lineWidth: 1,
            fillOpacity: if stacked then 30 else 10,
            showPoints: 'never',
            spanNulls: false,
            stacking: { mode: if stacked then 'normal' else 'none', group: 'A' },
          },
          min: 0,
        },
      },
      options: {
        legend: { displayMode: 'table', placement: 'bottom', showLegend: true, calcs: ['mean', 'max', 'lastNotNull'] },
        tooltip: { mode: 'multi', sort: 'desc' },
      },
    },

  // Horizontal bars, one per series.
  bargauge(title, description, query, unit=null, steps=[], w=12, h=8)::
    panel('bargauge', title, description, [query], unit, w, h) {
      fieldConfig+: { defaults+: { color: { mode: 'thresholds' }, thresholds: thresholds(steps) } },
      options: {
        displayMode: 'gradient',
        orientation: 'horizontal',
        showUnfilled: true,
        reduceOptions: reduceOptions,
        valueMode: 'color',
        minVizHeight: 10,
        minVizWidth: 0,
        namePlacement: 'auto',
      },
    },

  // A table of instant query results. columns: Grafana's `organize` transformation
  // (excludeByName, renameByName, indexByName); merge: join several queries' rows.
  table(title, description, queries, columns, merge=false, w=12, h=8)::
    panel('table', title, description, queries, null, w, h) {
      fieldConfig+: { defaults+: { custom: { align: 'auto', cellOptions: { type: 'auto' } } } },
      options: {
        showHeader: true,
        cellHeight: 'sm',
        footer: { show: false, reducer: ['sum'], fields: '' },
      },
      transformations: (if merge then [{ id: 'merge', options: {} }] else []) + [{
        id: 'organize',
        options: { excludeByName: {}, renameByName: {}, indexByName: {} } + columns,
      }],
    },

  // An override of the field configuration of the columns or series named `name`.
  byName(name, properties):: { matcher: { id: 'byName', options: name }, properties: properties },
  byRegexp(regexp, properties):: { matcher: { id: 'byRegexp', options: regexp }, properties: properties },

  // A panel of any other type: the caller gives fieldConfig.defaults and options.
  custom(type, title, description, queries, w=12, h=8):: panel(type, title, description, queries, null, w, h),

  // The dashboard. Its job variable offers the jobs config.execflowSelector matches.
  // rows: a list of rows, each a list of panels placed left to right; ids are numbered in
  // that order.
  // workloads: namespace and pod variables (from execflow_execs_total's workload labels)
  // for selectWorkload(); "All" also matches series without them (the host).
  dashboard(config, uid, title, description, rows, workloads=false)::
    local heights = [std.foldl(function(m, p) std.max(m, p.h), row, 0) for row in rows];
    local placed = std.flattenArrays([
      local y = std.foldl(function(s, h) s + h, heights[0:r], 0);
      [
        local p = rows[r][i];
        p { gridPos: { h: p.h, w: p.w, x: std.foldl(function(s, q) s + q.w, rows[r][0:i], 0), y: y } }
        for i in std.range(0, std.length(rows[r]) - 1)
      ]
      for r in std.range(0, std.length(rows) - 1)
    ]);
    local variable(name, label, query) = {
      name: name,
      label: label,
      type: 'query',
      datasource: datasource,
      query: { query: query, refId: 'PrometheusVariableQueryEditor-VariableQuery', qryType: 1 },
      definition: query,
      refresh: 2,
      sort: 1,
      hide: 0,
      regex: '',
      includeAll: false,
      multi: false,
      current: {},
      options: [],
    };
    {
      __inputs: [],
      __requires: [
        { type: 'grafana', id: 'grafana', name: 'Grafana', version: '10.0.0' },
        { type: 'datasource', id: 'prometheus', name: 'Prometheus', version: '1.0.0' },
      ],
      annotations: {
        list: [{
          builtIn: 1,
          datasource: { type: 'grafana', uid: '-- Grafana --' },
          enable: true,
          hide: true,
          iconColor: 'rgba(0, 211, 255, 1)',
          name: 'Annotations & Alerts',
          type: 'dashboard',
        }],
      },
      description: description,
      editable: true,
      fiscalYearStartMonth: 0,
      graphTooltip: 1,
      id: null,
      links: [{
        title: 'execflow',
        type: 'dashboards',
        tags: ['execflow'],
        asDropdown: true,
        includeVars: true,
        keepTime: true,
        icon: 'external link',
        targetBlank: false,
        tooltip: '',
        url: '',
      }],
      panels: [placed[i] { id: i + 1 } for i in std.range(0, std.length(placed) - 1)],
      refresh: '30s',
      schemaVersion: 39,
      tags: ['execflow', 'ebpf'],
      templating: {
        list: [
          {
            name: 'datasource',
            label: 'Data source',
            type: 'datasource',
            query: 'prometheus',
            regex: '',
            hide: 0,
            refresh: 1,
            includeAll: false,
            multi: false,
            current: {},
            options: [],
          },
          variable('job', 'Job', 'label_values(execflow_build_info{%s}, job)' % config.execflowSelector),
          variable('instance', 'Instance', 'label_values(execflow_build_info{job=~"$job"}, instance)') {
            includeAll: true,
            allValue: '.+',
            multi: true,
            current: { selected: true, text: ['All'], value: ['$__all'] },
          },
        ] + (if workloads then [
               variable('namespace',
                        'Namespace',
                        'label_values(execflow_execs_total{job=~"$job", instance=~"$instance"}, namespace)') {
                 includeAll: true,
                 allValue: '.*',
                 multi: true,
                 current: { selected: true, text: ['All'], value: ['$__all'] },
               },
               variable('pod',
                        'Pod',
                        'label_values(execflow_execs_total{job=~"$job", instance=~"$instance", namespace=~"$namespace"}, pod)') {
                 includeAll: true,
                 allValue: '.*',
                 multi: true,
                 current: { selected: true, text: ['All'], value: ['$__all'] },
               },
             ] else []),
      },
      time: { from: 'now-1h', to: 'now' },
      timepicker: {},
      timezone: '',
      title: title,
      uid: uid,
      version: 1,
      weekStart: '',
    },
}
