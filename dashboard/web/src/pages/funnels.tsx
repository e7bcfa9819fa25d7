// Funnels: ordered steps (pages or custom events) within a window; conversion and drop-off
// per step. The steps are in the URL (?step=page:/&step=event:Signup&range=30d&window=1800).
import { useEffect, useState } from 'preact/hooks'
import { api, notAvailable, type Site } from '../api'
import { navigate, useLocation, withQuery } from '../router'
import { exact, pct } from '../format'
import { Card, Notice, Spinner, useAsync, Warnings } from '../components/ui'
import { PRESETS, rangeLabel, readState } from './report-state'

interface Step { kind: 'page' | 'event'; value: string }
const MAX_STEPS = 8
const WINDOWS: [string, string][] = [['600', '10 minutes'], ['1800', '30 minutes'], ['3600', '1 hour'], ['86400', '1 day']]

const parseSteps = (q: URLSearchParams): Step[] => q.getAll('step').map(s => {
  const i = s.indexOf(':')
  return { kind: s.slice(0, i) === 'event' ? 'event' : 'page', value: s.slice(i + 1) } as Step
}).filter(s => s.value)

export function Funnels(props: { site: Site }) {
  const { site } = props
  const loc = useLocation()
  const st = readState(loc)
  const steps = parseSteps(loc.query)
  const win = WINDOWS.some(w => w[0] === loc.query.get('window')) ? loc.query.get('window')! : '1800'
  const [draft, setDraft] = useState<Step[]>(steps.length >= 2 ? steps : [{ kind: 'page', value: '/' }, { kind: 'page', value: '' }])
  useEffect(() => { document.title = `Funnels · ${site.domain} · Pulse` }, [site.domain])
  const suggestions = useAsync(async signal => {
    const [pages, events] = await Promise.all([
      api.query({ site_id: site.id, metrics: ['visitors'], date_range: '30d', dimensions: ['event:page'], limit: 50 }, signal),
      api.query({ site_id: site.id, metrics: ['visitors'], date_range: '30d', dimensions: ['event:name'], limit: 50, filters: [['is_not', 'event:name', ['pageview', 'engagement']]] }, signal),
    ])
    return { pages: pages.results.map(r => r.dimensions[0]), events: events.results.map(r => r.dimensions[0]) }
  }, [site.id])
  const result = useAsync(signal => steps.length < 2 ? Promise.resolve(null) : api.funnel({
    site_id: site.id, date_range: st.range, filters: st.filters, window: +win,
    steps: steps.map(s => s.kind === 'page' ? { page: s.value } : { event: s.value }),
  }, signal), [site.id, loc.query.toString()])
  const submit = (e: Event) => {
    e.preventDefault()
    const ok = draft.filter(s => s.value.trim())
    if (ok.length < 2) return
    navigate(withQuery(loc, { step: ok.map(s => `${s.kind}:${s.value.trim()}`) }))
  }
  const set = (i: number, s: Partial<Step>) => setDraft(draft.map((d, k) => k === i ? { ...d, ...s } : d))
  if (result.error && notAvailable(result.error)) return <div class="container"><Notice kind="warn"><strong>Funnels are not available on this server yet.</strong> They need <code>POST /api/v1/funnel</code>.</Notice></div>
  return (
    <div class="container">
      <div class="page-head"><div><h1>Funnels</h1><p class="muted">Where visitors drop off on the way to a goal, step by step.</p></div></div>
      <div class="funnel-layout">
        <form class="card form funnel-form" onSubmit={submit}>
          <h2>Steps</h2>
          <ol class="steps">
            {draft.map((s, i) => (
              <li class="step-edit">
                <span class="step-n" aria-hidden="true">{i + 1}</span>
                <select aria-label={`Step ${i + 1} kind`} value={s.kind} onChange={e => set(i, { kind: e.currentTarget.value as Step['kind'] })}>
                  <option value="page">Page</option>
                  <option value="event">Event</option>
                </select>
                <input aria-label={`Step ${i + 1} ${s.kind}`} list={s.kind === 'page' ? 'funnel-pages' : 'funnel-events'} placeholder={s.kind === 'page' ? '/pricing or /blog/*' : 'Signup'} value={s.value} onInput={e => set(i, { value: e.currentTarget.value })} />
                <button type="button" class="icon-btn" aria-label={`Remove step ${i + 1}`} disabled={draft.length <= 2} onClick={() => setDraft(draft.filter((_, k) => k !== i))}>×</button>
              </li>
            ))}
          </ol>
          <datalist id="funnel-pages">{suggestions.data?.pages.map(p => <option value={p} />)}</datalist>
          <datalist id="funnel-events">{suggestions.data?.events.map(p => <option value={p} />)}</datalist>
          {draft.length < MAX_STEPS && <button type="button" class="link-btn" onClick={() => setDraft([...draft, { kind: 'event', value: '' }])}>+ Add a step</button>}
          <div class="form-row">
            <label>Date range
              <select value={Array.isArray(st.range) ? '' : st.range} onChange={e => navigate(withQuery(loc, { range: e.currentTarget.value, from: null, to: null }), { replace: true })}>
                {Array.isArray(st.range) && <option value="">{rangeLabel(st.range)}</option>}
                {PRESETS.map(([v, t]) => <option value={v}>{t}</option>)}
              </select>
            </label>
            <label>Within
              <select value={win} onChange={e => navigate(withQuery(loc, { window: e.currentTarget.value === '1800' ? null : e.currentTarget.value }), { replace: true })}>
                {WINDOWS.map(([v, t]) => <option value={v}>{t}</option>)}
              </select>
            </label>
          </div>
          <button class="btn primary" type="submit">Show funnel</button>
        </form>
        <Card title={steps.length >= 2 ? `${rangeLabel(st.range)}` : 'Result'} class="funnel-result">
          {steps.length < 2 ? <p class="muted">Choose at least two steps, then “Show funnel”.</p>
            : result.error ? <Notice kind="error">{result.error.message}</Notice>
            : !result.data ? <Spinner />
            : <><Warnings warnings={result.data.meta.warnings} /><FunnelBars steps={result.data.steps} /></>}
        </Card>
      </div>
    </div>
  )
}

function FunnelBars(props: { steps: { label: string; visitors: number; conversion_rate: number; conversion_rate_step: number; dropoff: number }[] }) {
  const first = props.steps[0]?.visitors || 1
  return (
    <ol class="funnel">
      {props.steps.map((s, i) => (
        <li class="funnel-step">
          <div class="funnel-head">
            <span class="step-n">{i + 1}</span>
            <span class="funnel-label" title={s.label}>{s.label}</span>
            <span class="num strong">{exact(s.visitors)}</span>
            <span class="num muted funnel-pct">{pct(s.conversion_rate)}</span>
          </div>
          <div class="funnel-track"><div class="funnel-fill" style={{ width: `${Math.max(0.5, (s.visitors / first) * 100)}%` }} /></div>
          {i > 0 && <div class="funnel-drop muted small">{exact(s.dropoff)} dropped off · {pct(s.conversion_rate_step)} of the step before continued</div>}
        </li>
      ))}
    </ol>
  )
}
