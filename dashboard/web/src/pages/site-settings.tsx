// Site settings: the snippet (and whether events arrive), time zone, Do Not Track, data
// retention, allowed origins, the site's keys, share links, and deleting the site.
import { useEffect, useState } from 'preact/hooks'
import { api, call, type ShareLink, type Site } from '../api'
import { Link, navigate } from '../router'
import { loadSession } from '../session'
import { LiveClient } from '../live'
import { ago, date } from '../format'
import { Card, CopyField, Notice, Spinner, useAsync } from '../components/ui'

const RETENTION: [number, string][] = [[0, 'Keep forever'], [30, '30 days'], [90, '90 days'], [180, '6 months'], [365, '1 year'], [730, '2 years'], [1095, '3 years'], [1825, '5 years']]
const SHARE_TTL: [string, string][] = [['168h', '7 days'], ['720h', '30 days'], ['2160h', '90 days'], ['8760h', '1 year']]

/** useSave runs a change and says how it went, briefly. */
function useSave() {
  const [state, setState] = useState<{ busy: boolean; error: string; saved: boolean }>({ busy: false, error: '', saved: false })
  const run = async (f: () => Promise<unknown>) => {
    setState({ busy: true, error: '', saved: false })
    try {
      await f()
      setState({ busy: false, error: '', saved: true })
      setTimeout(() => setState(s => ({ ...s, saved: false })), 2000)
      return true
    } catch (e) {
      setState({ busy: false, error: (e as Error).message, saved: false })
      return false
    }
  }
  return { ...state, run }
}

export function SiteSettings(props: { site: Site }) {
  // The site list omits admin-only fields (identity secret): read the site itself.
  const full = useAsync(() => api.site(props.site.id), [props.site.id])
  useEffect(() => { document.title = `Settings · ${props.site.domain} · Pulse` }, [props.site.domain])
  const site = full.data || props.site
  const refresh = async () => { full.reload(); await loadSession(true) }
  return (
    <div class="container settings">
      <div class="page-head"><div><h1>Site settings</h1><p class="muted">{site.domain}</p></div></div>
      <nav class="settings-nav" aria-label="Sections">
        {[['snippet', 'Snippet'], ['general', 'General'], ['origins', 'Allowed origins'], ['keys', 'Keys'], ['share', 'Share links'], ['team', 'Team'], ['danger', 'Delete']].map(([id, t]) => <a href={'#' + id}>{t}</a>)}
      </nav>
      <Snippet site={site} />
      <General site={site} onSaved={refresh} />
      <Origins site={site} onSaved={refresh} />
      <Keys site={site} onSaved={refresh} />
      <ShareLinks site={site} />
      <Card title="Members, invitations and API keys" id="team">
        <p class="muted">People and API keys belong to the organization and reach all its sites.</p>
        <Link href={`/orgs/${site.org_id}/settings`} class="btn">Organization settings</Link>
      </Card>
      <DeleteSite site={site} />
    </div>
  )
}

function Snippet(props: { site: Site }) {
  const { site } = props
  const [last, setLast] = useState<number | null>(null)
  const [, tick] = useState(0)
  useEffect(() => {
    const c = new LiveClient(site.id, '', u => {
      const items = u.state?.feed?.items
      if (items?.length) setLast(items[items.length - 1].time)
    }, ['feed'])
    c.start()
    const t = setInterval(() => tick(n => n + 1), 5000)
    return () => { c.stop(); clearInterval(t) }
  }, [site.id])
  const snippet = `<script defer data-site="${site.public_key}" src="${location.origin}/js/pulse.js"></script>`
  return (
    <Card title="Tracking snippet" id="snippet">
      <p>Paste this into the <code>&lt;head&gt;</code> of every page of <strong>{site.domain}</strong>. It is under 3 KB, sets no cookies, and sends pageviews, single-page-app navigation and your <code>pulse.track()</code> events.</p>
      <CopyField value={snippet} label="tracking snippet" multiline />
      <p class="muted small">For outbound links, file downloads and engagement time, use <code>/js/pulse.full.js</code> instead. Custom events: <code>pulse.track("Signup", {'{'}plan: "pro"{'}'})</code>.</p>
      <div class={'verify ' + (last ? 'ok' : '')} role="status">
        <span class={'dot' + (last ? '' : ' idle')} aria-hidden="true" />
        {last ? <>Receiving events · last one {ago(last)}</> : <>Waiting for the first event… keep this page open while you install the snippet.</>}
      </div>
    </Card>
  )
}

function General(props: { site: Site; onSaved: () => void }) {
  const { site } = props
  const zones = (() => { try { return (Intl as any).supportedValuesOf('timeZone') as string[] } catch { return [] } })()
  if (!zones.includes('UTC')) zones.unshift('UTC')
  if (!zones.includes(site.time_zone)) zones.unshift(site.time_zone)
  const [tz, setTz] = useState(site.time_zone)
  const [dnt, setDnt] = useState(site.honor_dnt)
  const [retention, setRetention] = useState(site.retention_days ?? 0)
  useEffect(() => { setTz(site.time_zone); setDnt(site.honor_dnt); setRetention(site.retention_days ?? 0) }, [site.time_zone, site.honor_dnt, site.retention_days])
  const save = useSave()
  const retentionOptions = RETENTION.some(r => r[0] === retention) ? RETENTION : [...RETENTION, [retention, `${retention} days`] as [number, string]]
  const submit = (e: Event) => {
    e.preventDefault()
    const patch: Parameters<typeof api.updateSite>[1] = { time_zone: tz, honor_dnt: dnt }
    if (site.retention_days !== undefined) patch.retention_days = retention
    save.run(() => api.updateSite(site.id, patch)).then(ok => ok && props.onSaved())
  }
  return (
    <Card title="General" id="general">
      <form class="form" onSubmit={submit}>
        <label>Time zone<span class="hint">Days in reports start at midnight here.</span>
          <select value={tz} onChange={e => setTz(e.currentTarget.value)}>{zones.map(z => <option value={z}>{z.replace(/_/g, ' ')}</option>)}</select>
        </label>
        <label class="check">
          <input type="checkbox" checked={dnt} onChange={e => setDnt(e.currentTarget.checked)} />
          <span>Honour Do Not Track<span class="hint">Drop events from browsers that send <code>DNT: 1</code>. Global Privacy Control is always honoured.</span></span>
        </label>
        {site.retention_days !== undefined && (
          <label>Data retention<span class="hint">Events and visits older than this are deleted.</span>
            <select value={String(retention)} onChange={e => setRetention(+e.currentTarget.value)}>{retentionOptions.map(([d, t]) => <option value={String(d)}>{t}</option>)}</select>
          </label>
        )}
        {save.error && <Notice kind="error">{save.error}</Notice>}
        <div class="form-actions"><button class="btn primary" disabled={save.busy}>Save</button>{save.saved && <span class="saved" role="status">Saved</span>}</div>
      </form>
    </Card>
  )
}

function Origins(props: { site: Site; onSaved: () => void }) {
  const { site } = props
  const [origins, setOrigins] = useState(site.allowed_origins || [])
  const [adding, setAdding] = useState('')
  useEffect(() => setOrigins(site.allowed_origins || []), [site.allowed_origins?.join()])
  const save = useSave()
  const commit = (next: string[]) => save.run(() => api.updateSite(site.id, { allowed_origins: next })).then(ok => { if (ok) { setOrigins(next); setAdding(''); props.onSaved() } })
  const add = (e: Event) => {
    e.preventDefault()
    let o = adding.trim().replace(/\/+$/, '')
    if (!o) return
    if (!/^https?:\/\//.test(o)) o = 'https://' + o
    commit([...origins, o])
  }
  return (
    <Card title="Allowed origins" id="origins">
      <p class="muted">The tracker's WebSocket is accepted only from these exact origins (scheme, host and port). Add every domain and subdomain your site is served from.</p>
      <ul class="plain-list">
        {origins.length === 0 && <li class="muted">No origin: browsers cannot send events over the WebSocket.</li>}
        {origins.map(o => (
          <li class="list-row"><code>{o}</code><button type="button" class="btn small ghost" aria-label={`Remove ${o}`} onClick={() => commit(origins.filter(x => x !== o))}>Remove</button></li>
        ))}
      </ul>
      <form class="form-row inline" onSubmit={add}>
        <input aria-label="New origin" placeholder="https://www.example.com" value={adding} onInput={e => setAdding(e.currentTarget.value)} />
        <button class="btn" disabled={save.busy}>Add origin</button>
      </form>
      {save.error && <Notice kind="error">{save.error}</Notice>}
    </Card>
  )
}

function Keys(props: { site: Site; onSaved: () => void }) {
  const { site } = props
  const [show, setShow] = useState(false)
  const save = useSave()
  const rotate = () => {
    if (!confirm('Rotate the identity secret? Identity tokens signed with the current one stop working at once.')) return
    save.run(() => api.rotateIdentitySecret(site.id)).then(ok => ok && props.onSaved())
  }
  return (
    <Card title="Keys" id="keys">
      <div class="kv">
        <div class="kv-label">Public site key<span class="hint">In the snippet; safe to publish.</span></div>
        <CopyField value={site.public_key} label="public site key" />
      </div>
      {site.identity_secret && (
        <div class="kv">
          <div class="kv-label">Identity secret<span class="hint">Your backend signs <code>identify</code> tokens with it (HS256). Keep it secret.</span></div>
          {show ? <CopyField value={site.identity_secret} label="identity secret" /> : <button type="button" class="btn small" onClick={() => setShow(true)}>Reveal</button>}
          <button type="button" class="btn small ghost" onClick={rotate} disabled={save.busy}>Rotate</button>
        </div>
      )}
      {save.error && <Notice kind="error">{save.error}</Notice>}
      <p class="muted small">Secret API keys for server-side ingest and the query API are in the <Link href={`/orgs/${site.org_id}/settings#keys`}>organization settings</Link>.</p>
    </Card>
  )
}

function ShareLinks(props: { site: Site }) {
  const { site } = props
  const links = useAsync(() => api.shareLinks(site.id), [site.id])
  const [name, setName] = useState('')
  const [ttl, setTtl] = useState('720h')
  const [made, setMade] = useState<{ link: ShareLink; url: string } | null>(null)
  const save = useSave()
  const create = (e: Event) => {
    e.preventDefault()
    save.run(async () => {
      const r = await api.createShareLink(site.id, name.trim() || 'Shared dashboard', ttl)
      setMade({ link: r.share_link, url: `${location.origin}/share/${site.id}#${r.token}` })
      setName('')
      links.reload()
    })
  }
  const revoke = (l: ShareLink) => {
    if (!confirm(`Revoke “${l.name}”? Anyone using it loses access at once.`)) return
    save.run(async () => { await api.revokeShareLink(site.id, l.id); links.reload() })
  }
  const now = Date.now()
  return (
    <Card title="Share links" id="share">
      <p class="muted">A share link shows this site's live view and reports to anyone who has it, read-only, without an account.</p>
      {made && (
        <Notice kind="info">
          <p><strong>“{made.link.name}” is ready.</strong> Copy the link now: it is shown only once.</p>
          <CopyField value={made.url} label="share link" />
        </Notice>
      )}
      {links.data === undefined ? <Spinner /> : links.data.length === 0 ? <p class="muted">No share links yet.</p> : (
        <ul class="plain-list">
          {links.data.map(l => (
            <li class="list-row">
              <span><strong>{l.name}</strong><span class="muted small">{Date.parse(l.expires_at) < now ? ' · expired' : ` · expires ${date(l.expires_at)}`}</span></span>
              <button type="button" class="btn small ghost" onClick={() => revoke(l)}>Revoke</button>
            </li>
          ))}
        </ul>
      )}
      <form class="form-row inline" onSubmit={create}>
        <input aria-label="Share link name" placeholder="Name, e.g. Investors" value={name} onInput={e => setName(e.currentTarget.value)} />
        <select aria-label="Expires after" value={ttl} onChange={e => setTtl(e.currentTarget.value)}>{SHARE_TTL.map(([v, t]) => <option value={v}>{t}</option>)}</select>
        <button class="btn" disabled={save.busy}>Create link</button>
      </form>
      {save.error && <Notice kind="error">{save.error}</Notice>}
    </Card>
  )
}

function DeleteSite(props: { site: Site }) {
  const { site } = props
  const [typed, setTyped] = useState('')
  const save = useSave()
  const del = (e: Event) => {
    e.preventDefault()
    save.run(async () => {
      await call('DELETE', `/sites/${site.id}`)
      await loadSession(true)
      navigate('/')
    })
  }
  return (
    <Card title="Delete this site" id="danger" class="danger">
      <p class="muted">Its events, share links and settings are deleted. This cannot be undone.</p>
      <form class="form-row inline" onSubmit={del}>
        <input aria-label={`Type ${site.domain} to confirm`} placeholder={`Type ${site.domain} to confirm`} value={typed} onInput={e => setTyped(e.currentTarget.value)} />
        <button class="btn danger" disabled={typed !== site.domain || save.busy}>Delete site</button>
      </form>
      {save.error && <Notice kind="error">{save.error}</Notice>}
    </Card>
  )
}
