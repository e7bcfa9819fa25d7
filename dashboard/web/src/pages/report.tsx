// The historical report: date range, comparison, top stats, the time-series chart and the
// breakdown panels; a click on a row filters the whole report, filters show as removable
// chips, and everything is in the URL (report-state.ts).
import { useEffect, useRef, useState } from 'preact/hooks'
import { api, MAX_LIMIT, notAvailable, type Filter, type QueryResult, type QuerySpec, type Site } from '../api'
import { navigate, useLocation, withQuery, type Loc } from '../router'
import { bucket, country, duration, label as valueLabel, METRICS, noChangeReason, num, partialBucket, pct, ymd } from '../format'
import { BarList, Card, Notice, Segmented, Spinner, useAsync, Warnings } from '../components/ui'
import { TimeChart } from '../components/chart'
import { ComparedChange, ComparisonCaption } from '../components/compare'
import { DIMENSIONS, OPERATORS, PRESETS, filterParam, interval, rangeLabel, readState, type ReportState } from './report-state'
import { PLURALS, useExport } from './report-export'

const TOP_METRICS = ['visitors', 'visits', 'pageviews', 'views_per_visit', 'bounce_rate', 'visit_duration']
/**
 * GOAL_METRICS are the top stats of a report filtered by an event name: the visitors and
 * visits that did it, the conversions (the matching events) and the conversion rate
 * (docs/query-api.md, "Event filters"). Pageviews and bounce rate of converted visits say
 * little (a conversion is an interaction, so no such visit is a bounce).
 */
const GOAL_METRICS = ['visitors', 'visits', 'events', 'conversion_rate']
/** GOAL_LABELS name the top stats that read differently under an event filter. */
const GOAL_LABELS: Record<string, string> = { events: 'Total conversions' }
/** PANEL_ROWS is the number of rows of a breakdown panel (fixed height). */
const PANEL_ROWS = 9

export function Report(props: { site: Site; base?: string }) {
  const loc = useLocation()
  const st = readState(loc)
  const { site } = props
  useEffect(() => { document.title = `${site.domain} · ${rangeLabel(st.range)} · Pulse` }, [site.domain, JSON.stringify(st.range)])
  const go = (changes: Record<string, string | string[] | null>) => navigate(withQuery(loc, changes))
  const addFilter = (dim: string, value: string) => {
    const rest = st.filters.filter(f => !(f[1] === dim && f[0] === 'is'))
    go({ f: [...rest, ['is', dim, [value]] as Filter].map(filterParam) })
  }
  const removeFilter = (i: number) => go({ f: st.filters.filter((_, k) => k !== i).map(filterParam) })
  const common = { site_id: site.id, date_range: st.range, filters: st.filters }
  const goal = st.filters.some(f => f[1] === 'event:name')
  const topMetrics = goal ? GOAL_METRICS : TOP_METRICS
  const top = useAsync(signal => api.query({
    ...common, metrics: topMetrics,
    include: { totals: true, ...(st.compare ? { comparison: st.compare } : {}) },
  }, signal), [site.id, JSON.stringify(common), st.compare])
  if (top.error && notAvailable(top.error)) {
    return (
      <div class="container">
        <Controls loc={loc} st={st} go={go} />
        <Notice kind="warn"><strong>Historical reports are not available on this server yet.</strong> They need the query API (<code>POST /api/v1/query</code>), which this Pulse does not answer. The live view works meanwhile.</Notice>
      </div>
    )
  }
  return (
    <div class="container report" data-loading={top.loading ? 'true' : undefined}>
      <Controls loc={loc} st={st} go={go} />
      {st.filters.length > 0 && <Chips filters={st.filters} onRemove={removeFilter} onClear={() => go({ f: null })} />}
      {top.error && <Notice kind="error">{top.error.message}</Notice>}
      <Warnings warnings={top.data?.meta.warnings} />
      {st.compare && <ComparisonCaption meta={top.data?.meta.comparison} until={top.data?.meta.incomplete_until} />}
      <TopStats res={top.data} st={st} metrics={topMetrics} labels={goal ? GOAL_LABELS : {}} onMetric={m => navigate(withQuery(loc, { metric: m === 'visitors' ? null : m }), { replace: true })} />
      <MainChart site={site} st={st} />
      <div class="grid2">
        <Panel site={site} st={st} loc={loc} title="Top sources" name="sources" onPick={addFilter} tabs={[['visit:channel', 'Channels'], ['visit:source', 'Sources'], ['visit:referrer', 'Referrers']]} />
        <Panel site={site} st={st} loc={loc} title="Top pages" name="pages" onPick={addFilter} tabs={[['event:page', 'Pages'], ['visit:entry_page', 'Entry'], ['visit:exit_page', 'Exit']]} />
        <Panel site={site} st={st} loc={loc} title="Locations" name="locations" onPick={addFilter} tabs={[['visit:country', 'Countries'], ['visit:region', 'Regions'], ['visit:city', 'Cities']]} />
        <Panel site={site} st={st} loc={loc} title="Devices" name="devices" onPick={addFilter} tabs={[['visit:device', 'Devices'], ['visit:browser', 'Browsers'], ['visit:os', 'OS']]} />
        <Panel site={site} st={st} loc={loc} title="Campaigns" name="campaigns" onPick={addFilter} tabs={[['visit:utm_source', 'Source'], ['visit:utm_medium', 'Medium'], ['visit:utm_campaign', 'Campaign']]} />
        <Panel site={site} st={st} loc={loc} title="Custom events" name="events" onPick={addFilter} tabs={[['event:name', 'Events']]} />
      </div>
    </div>
  )
}

function Controls(props: { loc: Loc; st: ReportState; go: (c: Record<string, string | string[] | null>) => void }) {
  const { st, go } = props
  return (
    <div class="report-bar">
      <RangePicker st={st} go={go} />
      <label class="switch">
        <input type="checkbox" checked={!!st.compare} onChange={e => go({ compare: e.currentTarget.checked ? 'previous_period' : null })} />
        <span class="switch-track" aria-hidden="true"><span /></span>
        Compare
      </label>
      {st.compare && (
        <select class="select small" aria-label="Compare with" value={st.compare} onChange={e => go({ compare: e.currentTarget.value })}>
          <option value="previous_period">Previous period</option>
          <option value="year_over_year">Year over year</option>
        </select>
      )}
    </div>
  )
}

function RangePicker(props: { st: ReportState; go: (c: Record<string, string | string[] | null>) => void }) {
  const { st, go } = props
  const [open, setOpen] = useState(false)
  const [custom, setCustom] = useState(false)
  const today = ymd(new Date())
  const [from, setFrom] = useState(Array.isArray(st.range) ? st.range[0] : ymd(new Date(Date.now() - 6 * 864e5)))
  const [to, setTo] = useState(Array.isArray(st.range) ? st.range[1] : today)
  const ref = useRef<HTMLDivElement>(null)
  useEffect(() => {
    if (!open) return
    const away = (e: Event) => { if (!ref.current?.contains(e.target as Node)) setOpen(false) }
    const esc = (e: KeyboardEvent) => { if (e.key === 'Escape') setOpen(false) }
    document.addEventListener('mousedown', away)
    document.addEventListener('keydown', esc)
    ref.current?.querySelector<HTMLElement>('.menu-list button.on, .menu-list button')?.focus()
    return () => { document.removeEventListener('mousedown', away); document.removeEventListener('keydown', esc) }
  }, [open])
  const pick = (r: string) => { setOpen(false); setCustom(false); go({ range: r === '30d' ? null : r, from: null, to: null }) }
  return (
    <div class="menu range" ref={ref}>
      <button type="button" class="menu-btn btn" aria-haspopup="true" aria-expanded={open} onClick={() => setOpen(!open)}>
        <svg viewBox="0 0 24 24" width="16" height="16" fill="none" stroke="currentColor" stroke-width="1.8" aria-hidden="true"><rect x="3" y="5" width="18" height="16" rx="2" /><path d="M3 10h18M8 3v4M16 3v4" /></svg>
        <span>{rangeLabel(st.range)}</span><span class="caret" aria-hidden="true">▾</span>
      </button>
      {open && (
        <div class="menu-list" role="menu">
          {PRESETS.map(([v, text]) => <button type="button" class={st.range === v ? 'on' : ''} onClick={() => pick(v)}>{text}</button>)}
          <hr />
          {!custom && <button type="button" onClick={() => setCustom(true)}>Custom range…</button>}
          {custom && (
            <form class="custom-range" onSubmit={e => { e.preventDefault(); setOpen(false); go({ range: null, from, to }) }}>
              <label>From<input type="date" value={from} max={to} onInput={e => setFrom(e.currentTarget.value)} required /></label>
              <label>To<input type="date" value={to} min={from} max={today} onInput={e => setTo(e.currentTarget.value)} required /></label>
              <button class="btn primary small" type="submit">Apply</button>
            </form>
          )}
        </div>
      )}
    </div>
  )
}

function Chips(props: { filters: Filter[]; onRemove: (i: number) => void; onClear: () => void }) {
  return (
    <div class="chips" aria-label="Filters">
      {props.filters.map((f, i) => {
        const v = f[1] === 'visit:country' ? country(f[2][0]) : valueLabel(f[1], f[2][0])
        const text = `${DIMENSIONS[f[1]] || f[1]} ${OPERATORS[f[0]] || f[0]} ${v}`
        return (
          <span class="chip" data-filter={filterParam(f)}>
            <span class="chip-dim">{DIMENSIONS[f[1]] || f[1]}</span> {OPERATORS[f[0]]} <strong>{v}</strong>
            <button type="button" class="chip-x" aria-label={`Remove filter: ${text}`} onClick={() => props.onRemove(i)}>×</button>
          </span>
        )
      })}
      {props.filters.length > 1 && <button type="button" class="link-btn" onClick={props.onClear}>Clear all</button>}
    </div>
  )
}

function TopStats(props: { res?: QueryResult; st: ReportState; metrics: string[]; labels: Record<string, string>; onMetric: (m: string) => void }) {
  // Totals of an earlier request (other metrics) are not shown under these labels.
  const t = props.res && props.res.meta.metrics.join() === props.metrics.join() ? props.res.totals : undefined
  return (
    <div class="stats report-stats" role="tablist" aria-label="Metric of the chart">
      {props.metrics.map((m, i) => {
        const def = { ...METRICS[m], label: props.labels[m] || METRICS[m].label }
        const v = t?.metrics[i]
        const on = props.st.metric === m
        return (
          <button type="button" role="tab" aria-selected={on} class={'stat' + (on ? ' on' : '')} onClick={() => props.onMetric(m)}>
            <span class="stat-label">{def.label}</span>
            <span class="stat-value num" data-value={v ?? undefined} title={v == null ? undefined : String(v)}>{v == null ? "–" : def.fmt(v)}</span>
            {t?.comparison
              ? <span class="stat-sub"><ComparedChange meta={props.res?.meta.comparison} change={t.comparison.change[i]} prev={t.comparison.metrics[i]} fmt={def.fmt} points={def.points} lowerIsBetter={def.lowerIsBetter} /></span>
              : <span class="stat-sub" />}
          </button>
        )
      })}
    </div>
  )
}

function MainChart(props: { site: Site; st: ReportState }) {
  const { site, st } = props
  const metric = METRICS[st.metric] ? st.metric : 'visitors'
  const dim = interval(st.range)
  // Under an event filter the chart names its metric as the top stats do ("Total conversions").
  const goal = st.filters.some(f => f[1] === 'event:name')
  const def = { ...METRICS[metric], label: (goal && GOAL_LABELS[metric]) || METRICS[metric].label }
  // spec is the chart's query without the comparison, which the CSV leaves out anyway.
  const spec: QuerySpec = {
    site_id: site.id, metrics: [metric], date_range: st.range, filters: st.filters, dimensions: [dim],
    include: { time_labels: true }, limit: MAX_LIMIT,
  }
  const res = useAsync(signal => api.query({
    ...spec, include: { ...spec.include, ...(st.compare ? { comparison: st.compare } : {}) },
  }, signal), [site.id, JSON.stringify(st.range), JSON.stringify(st.filters), metric, st.compare])
  const by = dim === 'time:hour' ? 'by hour' : dim === 'time:day' ? 'by day' : 'by month'
  const csv = useExport(spec, `${def.label} ${by}`)
  const rows = res.data?.results || []
  const labels = rows.map(r => bucket(r.dimensions[0], dim))
  const long = rows.map(r => bucket(r.dimensions[0], dim, true))
  // The bucket that holds the moment the range was answered up to is partial ("so far");
  // buckets after it have not begun and have no value rather than a zero.
  const until = res.data?.meta.incomplete_until
  const partial = partialBucket(rows.map(r => r.dimensions[0]), dim, until)
  const series = [{ label: def.label, values: rows.map((r, i) => until && i > partial ? null : r.metrics[0]) as number[] }]
  // Without data for the earlier period there is no line to compare with (it would be a cliff).
  const cmpReason = noChangeReason(res.data?.meta.comparison)
  if (st.compare && !cmpReason && rows.some(r => r.comparison)) series.push({ label: st.compare === 'year_over_year' ? 'A year earlier' : 'Previous period', values: rows.map(r => r.comparison?.metrics[0] ?? null) as number[], compare: true } as any)
  return (
    <Card class="main-chart" title={def.label} actions={<>
      {partial >= 0 && <span class="so-far-key muted small" title={`The last ${dim.slice(5)} is not over: its value is up to ${bucket(until!.slice(0, 16), 'time:hour', true)}`}><span class="so-far-dash" aria-hidden="true" />so far</span>}
      {st.compare && cmpReason && <span class="change-note small">previous period: {cmpReason}</span>}
      <span class="muted small">{by}{res.data ? ` · ${res.data.meta.time_zone}` : ''}</span>{csv.button}
    </>}>
      {csv.notice}
      {res.error && !notAvailable(res.error) ? <Notice kind="error">{res.error.message}</Notice>
        : rows.length === 0 ? <div class="chart-empty">{res.loading ? <Spinner /> : 'No data in this range'}</div>
        : <TimeChart labels={labels} long={long} series={series} fmt={def.fmt} partial={partial} />}
    </Card>
  )
}

function Panel(props: { site: Site; st: ReportState; loc: Loc; title: string; name: string; tabs: [string, string][]; onPick: (dim: string, value: string) => void }) {
  const { site, st, loc, name, tabs } = props
  const chosen = loc.query.get(name)
  const dim = tabs.find(t => t[0] === chosen)?.[0] || tabs[0][0]
  const events = dim === 'event:name'
  const filters: unknown[] = events ? [...st.filters, ['is_not', 'event:name', ['pageview']]] : st.filters
  const metrics = PANEL_METRICS[dim] || ['visitors']
  const spec: QuerySpec = { site_id: site.id, metrics, date_range: st.range, filters, dimensions: [dim], order_by: [['visitors', 'desc']] }
  const res = useAsync(signal => api.query({ ...spec, limit: PANEL_ROWS }, signal), [site.id, dim, JSON.stringify(st.range), JSON.stringify(st.filters)])
  // Campaign panels list campaigns: visits without the parameter are left out (of the CSV
  // by a filter, of the panel's few rows after the query).
  const utm = dim.startsWith('visit:utm_')
  const csv = useExport({ ...spec, filters: utm ? [...filters, ['is_not', dim, ['', '(none)']]] : filters, limit: MAX_LIMIT }, PLURALS[dim] || DIMENSIONS[dim] || dim)
  const rows = (res.data?.results || []).filter(r => !utm || (r.dimensions[0] !== '' && r.dimensions[0] !== '(none)')).map(r => ({
    key: r.dimensions[0],
    n: r.metrics[0],
    title: r.dimensions[0],
    label: dim === 'visit:country' ? <><span class="cc">{r.dimensions[0].length === 2 ? r.dimensions[0] : '–'}</span>{country(r.dimensions[0])}</> : valueLabel(dim, r.dimensions[0]),
    extra: metrics.length > 1 ? <>{metrics.slice(1).map((m, k) => <PanelNumber metric={m} row={r.metrics} metrics={metrics} i={k + 1} />)}</> : undefined,
  }))
  const filtered = st.filters.some(f => f[1] === dim && f[0] === 'is')
  return (
    <Card title={props.title} class="top panel" id={`panel-${name}`} actions={<>
      {tabs.length > 1 && <Segmented small label={name} value={dim} onChange={v => navigate(withQuery(loc, { [name]: v === tabs[0][0] ? null : v }), { replace: true })} options={tabs} />}
      {csv.button}
    </>}>
      {csv.notice}
      <div class="list-head">
        <span>{DIMENSIONS[dim]}</span>
        <span>{metrics.slice(1).map((m, k) => <span class={'head-n2' + (k > 0 ? ' head-n3' : '')} title={COLUMNS[m].title}>{COLUMNS[m].head}</span>)}Visitors</span>
      </div>
      {res.error && !notAvailable(res.error) ? <Notice kind="error">{res.error.message}</Notice>
        : <BarList rows={rows} slots={PANEL_ROWS} onPick={filtered ? undefined : v => props.onPick(dim, v)} empty={res.loading ? 'Loading…' : 'No data in this range'} />}
    </Card>
  )
}

/** PANEL_METRICS are the metrics of a panel's dimension: visitors (the bar) and its columns. */
const PANEL_METRICS: Record<string, string[]> = {
  'event:page': ['visitors', 'pageviews', 'time_on_page', 'scroll_depth'],
  'event:name': ['visitors', 'events', 'conversion_rate'],
}

/** COLUMNS is the heading and format of each panel column after the first. */
const COLUMNS: Record<string, { head: string; title: string; fmt: (n: number) => string }> = {
  pageviews: { head: 'Views', title: 'Pageviews', fmt: num },
  events: { head: 'Events', title: 'Events (conversions)', fmt: num },
  conversion_rate: { head: 'CR', title: 'Conversion rate: percent of all visitors who did it', fmt: pct },
  time_on_page: { head: 'Time', title: 'Time on page: mean time a visit had the page visible', fmt: duration },
  scroll_depth: { head: 'Scroll', title: 'Scroll depth: mean deepest scroll of a visit on the page', fmt: n => `${Math.round(n)}%` },
}

/**
 * PanelNumber is one column of a panel row. A page without engagement events (time and
 * scroll both 0: its tracker sends none) shows no time or scroll rather than a zero.
 */
function PanelNumber(props: { metric: string; row: number[]; metrics: string[]; i: number }) {
  const { metric, row, metrics, i } = props
  const v = row[i]
  const engagement = metric === 'time_on_page' || metric === 'scroll_depth'
  const none = engagement && metrics.every((m, k) => !(m === 'time_on_page' || m === 'scroll_depth') || row[k] === 0)
  return (
    <span class={'bar-n2 num muted' + (i > 1 ? ' bar-n3' : '')} data-metric={metric} data-value={none ? undefined : v} title={none ? 'No engagement reported for this page (pulse.full.js sends it)' : undefined}>
      {none ? '–' : COLUMNS[metric].fmt(v)}
    </span>
  )
}
