// The live view: online now, a chart that scrolls, top lists that update in place (changed
// rows flash), the live feed, and a visible "Reconnecting…" state that recovers by itself.
import { useEffect, useState } from 'preact/hooks'
import type { Site } from '../api'
import { LiveClient, type LiveState, type LiveUpdate, type Top } from '../live'
import { ago, country, exact, label, num, source } from '../format'
import { BarList, Card, Notice, Segmented, Spinner } from '../components/ui'
import { LiveChart } from '../components/chart'

type Win = '5m' | '30m'

/** SLOTS is the fixed number of rows of each top list (no layout shift as entries come and go). */
const SLOTS = 8
/** FEED_ROWS is how many feed items are shown (the list has a fixed height). */
const FEED_ROWS = 8

export function LiveView(props: { site: Site; token?: string }) {
  const { site, token = '' } = props
  const [u, setU] = useState<LiveUpdate>({ state: null, status: 'connecting', message: '', retryAt: 0 })
  const [win, setWin] = useState<Win>('30m')
  const [scale, setScale] = useState<'seconds' | 'minutes'>('seconds')
  const [, setNow] = useState(0)
  useEffect(() => {
    document.title = `Live · ${site.domain} · Pulse`
    const c = new LiveClient(site.id, token, setU)
    c.start()
    const t = setInterval(() => setNow(Date.now()), 1000)
    return () => { c.stop(); clearInterval(t) }
  }, [site.id, token])
  const s = u.state
  if (u.status === 'failed') return <div class="container"><Notice kind="error">{u.message}</Notice></div>
  if (!s) return <div class="container"><LiveStatus u={u} /><div class="live-skeleton"><Spinner label="Connecting to the live stream…" /></div></div>
  const sec = s.rates?.seconds, min = s.rates?.minutes
  const sum = (a: number[] | undefined, n: number) => (a || []).slice(-n).reduce((x, y) => x + y, 0)
  return (
    <div class={'container live' + (u.status === 'reconnecting' ? ' stale' : '')}>
      <div class="live-bar">
        <LiveStatus u={u} time={s.time} />
        <Segmented label="Top lists cover" value={win} onChange={setWin} options={[['5m', 'Last 5 min'], ['30m', 'Last 30 min']]} />
      </div>
      <div class="stats live-stats">
        <div class="stat hero" data-testid="online-now">
          <span class="stat-label"><span class="dot" aria-hidden="true" />Online now</span>
          <span class="stat-value num" aria-live="polite">{exact(s.online?.now ?? 0)}</span>
          <span class="stat-sub muted">{s.online ? onlineSub(s.online) : ''}</span>
        </div>
        <div class="stat">
          <span class="stat-label">Visitors · 30 min</span>
          <span class="stat-value num">{num(s.visitors?.['30m'] ?? 0)}</span>
        </div>
        <div class="stat">
          <span class="stat-label">Pageviews · 30 min</span>
          <span class="stat-value num">{num(sum(min?.pageviews, 30))}</span>
        </div>
        <div class="stat">
          <span class="stat-label">Events · 1 min</span>
          <span class="stat-value num">{num(sum(sec?.events, 60))}</span>
        </div>
      </div>
      <Card title={scale === 'seconds' ? 'Events per second' : 'Events per minute'} class="live-chart" actions={
        <>
          <span class="legend"><i class="sw accent" />Pageviews<i class="sw other" />Other events</span>
          <Segmented small label="Chart span" value={scale} onChange={setScale} options={[['seconds', '5 min'], ['minutes', '1 hour']]} />
        </>
      }>
        {sec && min && (scale === 'seconds'
          ? <LiveChart end={sec.end} events={sec.events} pageviews={sec.pageviews} step={1} />
          : <LiveChart end={min.end} events={min.events} pageviews={min.pageviews} step={60} />)}
      </Card>
      <div class="grid2">
        <TopCard title="Top pages" win={win} views={[['pages', 'Pages', s.pages], ['entries', 'Entry pages', s.entries]]} />
        <TopCard title="Top sources" win={win} views={[['sources', 'Sources', s.sources], ['channels', 'Channels', s.channels]]} />
        <TopCard title="Countries" win={win} views={[['countries', 'Countries', s.countries]]} />
        <TopCard title="Devices" win={win} views={[['devices', 'Devices', s.devices], ['browsers', 'Browsers', s.browsers]]} />
        <EventsCard s={s} win={win} />
        <Feed s={s} />
      </div>
    </div>
  )
}

function onlineSub(o: { now: number; connections: number; http: number }): string {
  const parts = []
  if (o.connections) parts.push(`${exact(o.connections)} connected`)
  if (o.http) parts.push(`${exact(o.http)} recently over HTTP`)
  return parts.join(' · ') || 'nobody right now'
}

function LiveStatus(props: { u: LiveUpdate; time?: number }) {
  const { u } = props
  if (u.status === 'reconnecting') {
    const secs = Math.max(0, Math.ceil((u.retryAt - Date.now()) / 1000))
    return <div class="live-status reconnecting" role="status"><span class="spinner" aria-hidden="true" />Reconnecting…<span class="muted">{secs > 1 ? ` retrying in ${secs}s` : ''}</span></div>
  }
  if (u.status === 'connecting') return <div class="live-status" role="status"><span class="spinner" aria-hidden="true" />Connecting…</div>
  return <div class="live-status on" role="status"><span class="dot pulse" aria-hidden="true" />Live<span class="muted"> · updates as they happen</span></div>
}

function TopCard(props: { title: string; win: Win; views: [string, string, Top | undefined][] }) {
  const [view, setView] = useState(props.views[0][0])
  const cur = props.views.find(v => v[0] === view) || props.views[0]
  const rows = (cur[2]?.[props.win] || []).map(c => ({
    key: c.key, n: c.n, title: c.key,
    label: view === 'countries' ? <><span class="cc">{c.key.length === 2 ? c.key : '–'}</span>{country(c.key)}</> : label(view, c.key),
  }))
  return (
    <Card title={props.title} class="top" actions={
      props.views.length > 1
        ? <Segmented small label={props.title} value={cur[0]} onChange={setView} options={props.views.map(v => [v[0], v[1]] as [string, string])} />
        : undefined
    }>
      <div class="list-head"><span>{cur[1]}</span><span>{view === 'pages' || view === 'entries' ? 'Views' : 'Pageviews'}</span></div>
      <BarList rows={rows} slots={SLOTS} flash empty="Nothing in this window yet" />
    </Card>
  )
}

function EventsCard(props: { s: LiveState; win: Win }) {
  const [view, setView] = useState<'events' | 'goals'>('events')
  const rows = view === 'events'
    ? (props.s.events?.[props.win] || []).map(c => ({ key: c.key, n: c.n, label: c.key, title: c.key }))
    : (props.s.goals?.items || []).map(g => ({ key: g.name, n: g[props.win], label: g.name, title: g.name })).filter(r => r.n > 0).sort((a, b) => b.n - a.n)
  return (
    <Card title="Custom events" class="top" actions={
      <Segmented small label="Custom events" value={view} onChange={setView} options={[['events', 'Events'], ['goals', 'Goals']]} />
    }>
      <div class="list-head"><span>{view === 'events' ? 'Event' : 'Goal'}</span><span>{view === 'events' ? 'Count' : 'Completions'}</span></div>
      <BarList rows={rows} slots={SLOTS} flash empty={view === 'events' ? 'No custom events in this window' : 'No goal completed in this window'} />
    </Card>
  )
}

function Feed(props: { s: LiveState }) {
  const items = (props.s.feed?.items || []).slice(-FEED_ROWS).reverse()
  const every = props.s.feed?.sample_every || 1
  return (
    <Card title="Live feed" class="feed" actions={every > 1 ? <span class="muted small">1 in {every} events</span> : undefined}>
      <div class="list-head"><span>Event</span><span>When</span></div>
      <ol class="feed-list" aria-live="off">
        {items.length === 0 && <li class="barlist-empty">Waiting for the next event…</li>}
        {items.map(it => (
          <li key={it.n} class="feed-item">
            <span class={'feed-icon ' + it.type} aria-hidden="true">{it.type === 'page' || it.type === 'screen' ? '◧' : '⚡'}</span>
            <span class="feed-what">
              <span class="feed-main">{it.type === 'page' || it.type === 'screen' ? (it.path || '/') : (it.name || it.type)}</span>
              <span class="feed-meta muted">
                {[it.type !== 'page' && it.path, source(it.source), it.country ? country(it.country) : '', it.device && label('devices', it.device)].filter(Boolean).join(' · ')}
              </span>
            </span>
            <time class="feed-time muted num" dateTime={new Date(it.time).toISOString()}>{ago(it.time)}</time>
          </li>
        ))}
      </ol>
    </Card>
  )
}
