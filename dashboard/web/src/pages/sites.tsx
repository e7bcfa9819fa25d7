// The site list: every site the user can see, with visitors online now (live), a sparkline
// of the last 30 days (today so far dashed) and the change against the 30 days before, or why
// there is none.
import { useEffect, useState } from 'preact/hooks'
import { api, ApiError, notAvailable, type Site } from '../api'
import { Link, navigate } from '../router'
import { canAdmin, loadSession, useSession } from '../session'
import { LiveClient } from '../live'
import { num } from '../format'
import { Notice, useAsync } from '../components/ui'
import { ComparedChange } from '../components/compare'
import { Sparkline } from '../components/chart'

/** LIVE_CARDS: sites beyond this many show no online count (one live socket per card). */
const LIVE_CARDS = 24

export function Sites() {
  const session = useSession()!
  const [adding, setAdding] = useState(false)
  const admins = session.orgs.filter(o => canAdmin(session, o.id))
  useEffect(() => { document.title = 'Sites · Pulse' }, [])
  return (
    <div class="container">
      <div class="page-head">
        <div>
          <h1>Sites</h1>
          <p class="muted">{session.sites.length === 1 ? 'One site' : `${session.sites.length} sites`} in {session.orgs.length === 1 ? session.orgs[0].name : `${session.orgs.length} organizations`}</p>
        </div>
        {admins.length > 0 && !adding && <button class="btn primary" onClick={() => setAdding(true)}>+ Add a site</button>}
      </div>
      {adding && <AddSite orgs={admins.map(o => ({ id: o.id, name: o.name }))} onDone={() => setAdding(false)} />}
      {session.sites.length === 0 && !adding && (
        <div class="empty-page">
          <h2>No sites yet</h2>
          <p>{admins.length ? 'Add your first site to get its tracking snippet.' : 'Ask an admin of your organization to add a site.'}</p>
        </div>
      )}
      <ul class="site-grid">
        {session.sites.map((s, i) => <SiteCard site={s} live={i < LIVE_CARDS} orgName={session.orgs.length > 1 ? session.orgs.find(o => o.id === s.org_id)?.name : undefined} />)}
      </ul>
    </div>
  )
}

function SiteCard(props: { site: Site; live: boolean; orgName?: string }) {
  const { site } = props
  const [online, setOnline] = useState<number | null>(null)
  useEffect(() => {
    if (!props.live) return
    const c = new LiveClient(site.id, '', u => setOnline(u.state?.online?.now ?? null), ['online'])
    c.start()
    return () => c.stop()
  }, [site.id])
  const hist = useAsync(signal => api.query({
    site_id: site.id, metrics: ['visitors'], date_range: '30d', dimensions: ['time:day'],
    include: { time_labels: true, totals: true, comparison: 'previous_period' },
  }, signal), [site.id])
  const values = hist.data?.results.map(r => r.metrics[0] ?? 0) || []
  const total = hist.data?.totals?.metrics[0]
  const cmp = hist.data?.totals?.comparison
  return (
    <li class="site-card">
      <Link href={`/sites/${site.id}/live`} class="site-card-link">
        <div class="site-card-head">
          <span class="favicon" aria-hidden="true">{site.domain[0]?.toUpperCase()}</span>
          <div class="site-card-name">
            <strong>{site.domain}</strong>
            {props.orgName && <span class="muted small">{props.orgName}</span>}
          </div>
          {online !== null && <span class="online-pill" title="Visitors online now"><span class="dot" aria-hidden="true" /><span class="num">{num(online)}</span> online</span>}
        </div>
        <div class="site-card-chart">
          {values.length > 1 ? <Sparkline values={values} partial={!!hist.data?.meta.incomplete_until} /> : <div class="spark spark-empty" />}
        </div>
        <div class="site-card-foot">
          <span><span class="num strong">{total == null ? '–' : num(total)}</span> <span class="muted">visitors · 30 days</span></span>
          {cmp && <span class="site-card-change"><ComparedChange meta={hist.data?.meta.comparison} change={cmp.change[0]} /></span>}
          {hist.error && !notAvailable(hist.error) && <span class="muted small">history unavailable</span>}
        </div>
      </Link>
    </li>
  )
}

function AddSite(props: { orgs: { id: string; name: string }[]; onDone: () => void }) {
  const [org, setOrg] = useState(props.orgs[0].id)
  const [domain, setDomain] = useState('')
  const [error, setError] = useState('')
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'
  const submit = async (e: Event) => {
    e.preventDefault()
    setError('')
    try {
      const site = await api.createSite(org, domain.trim(), zone)
      await loadSession(true)
      navigate(`/sites/${site.id}/settings`)
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err))
    }
  }
  return (
    <form class="card add-site form" onSubmit={submit}>
      <h2>Add a site</h2>
      {error && <Notice kind="error">{error}</Notice>}
      <div class="form-row">
        <label class="grow">Domain<input name="domain" placeholder="example.com" required value={domain} onInput={e => setDomain(e.currentTarget.value)} autoFocus /></label>
        {props.orgs.length > 1 && (
          <label>Organization<select value={org} onChange={e => setOrg(e.currentTarget.value)}>{props.orgs.map(o => <option value={o.id}>{o.name}</option>)}</select></label>
        )}
      </div>
      <p class="muted small">Reports use your time zone ({zone}); you can change it in the site's settings.</p>
      <div class="form-actions">
        <button class="btn primary" type="submit">Add site</button>
        <button class="btn" type="button" onClick={props.onDone}>Cancel</button>
      </div>
    </form>
  )
}
