// Organization settings: name, usage against the quota, members and their roles,
// invitations, and secret API keys.
import { useEffect, useState } from 'preact/hooks'
import { api, call, type APIKey, type Invite, type Member, type Org, type Role, type Scope, type Site, type UsageSource } from '../api'
import { loadSession, roleIn, useSession } from '../session'
import { date, exact, num, pct, ymd } from '../format'
import { Card, CopyField, Notice, Spinner, useAsync } from '../components/ui'
import { TimeChart } from '../components/chart'
import { NotFound } from '../app'

/** Person is a member with their name and email (GET /api/v1/orgs/{org}/people, admins). */
interface Person extends Member { email: string; name: string }

export function OrgSettings(props: { orgId: string }) {
  const session = useSession()!
  const org = session.orgs.find(o => o.id === props.orgId)
  useEffect(() => { document.title = `${org?.name || 'Organization'} · Pulse` }, [org?.name])
  if (!org) return <NotFound what="page" />
  const role = roleIn(session, org.id)
  const admin = role === 'admin' || role === 'owner'
  return (
    <div class="container settings">
      <div class="page-head"><div><h1>{org.name}</h1><p class="muted">Organization settings · your role: {role || 'operator'}</p></div></div>
      <UsageCard org={org} />
      {admin && <OrgName org={org} />}
      <Members org={org} admin={admin} me={session.me.user?.id || ''} />
      {admin && <Invites org={org} />}
      {admin && <Keys org={org} />}
    </div>
  )
}

function OrgName(props: { org: Org }) {
  const [name, setName] = useState(props.org.name)
  const [msg, setMsg] = useState('')
  const save = async (e: Event) => {
    e.preventDefault()
    try { await api.renameOrg(props.org.id, name.trim()); await loadSession(true); setMsg('Saved') } catch (err) { setMsg((err as Error).message) }
  }
  return (
    <Card title="Name" id="name">
      <form class="form-row inline" onSubmit={save}>
        <input aria-label="Organization name" value={name} onInput={e => setName(e.currentTarget.value)} required />
        <button class="btn">Rename</button>
        {msg && <span class="saved" role="status">{msg}</span>}
      </form>
    </Card>
  )
}

function UsageCard(props: { org: Org }) {
  const to = new Date(), from = new Date(Date.now() - 29 * 864e5)
  const usage = useAsync(() => api.usage(props.org.id, ymd(from), ymd(to)), [props.org.id])
  const sites = useAsync(() => api.sites(props.org.id), [props.org.id])
  const u = usage.data
  const byDay = new Map((u?.days || []).map(d => [d.day.slice(0, 10), d]))
  const days = Array.from({ length: 30 }, (_, i) => ymd(new Date(from.getTime() + i * 864e5)))
  const month = ymd(to).slice(0, 7)
  const monthTotal = (u?.days || []).filter(d => d.day.startsWith(month)).reduce((s, d) => s + d.events, 0)
  const refused = (u?.days || []).reduce((s, d) => s + d.rejected_events, 0)
  const cap = u?.quota.events_per_month || 0
  const share = cap ? Math.min(100, (monthTotal / cap) * 100) : 0
  return (
    <Card title="Usage" id="usage">
      {usage.error ? <Notice kind="error">{usage.error.message}</Notice> : !u ? <Spinner /> : (
        <>
          <div class="usage-top">
            <div>
              <div class="stat-label">Events this month</div>
              <div class="usage-num"><span class="num">{exact(monthTotal)}</span><span class="muted"> of {num(cap)}</span></div>
            </div>
            <div class="usage-quota muted small">
              <span>{num(u.quota.events_per_second)} events/s</span>
              <span>{num(u.quota.max_connections)} connections</span>
              {refused > 0 && <span class="warn-text">{exact(refused)} refused in 30 days</span>}
            </div>
          </div>
          <div class="meter" role="meter" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(share)} aria-label="Share of the monthly quota used"><span style={{ width: share + '%' }} class={share > 90 ? 'hot' : ''} /></div>
          <p class="muted small">Events stored per UTC day they were received, each once (a resent event is not counted again), on every way in (tracker, /v1/events, Segment, Plausible), bots included unless they are dropped; a demo site's back-filled history counts on the day it happened. Refused: events over a quota.</p>
          <TimeChart height={180} labels={days.map(d => new Date(d + 'T00:00:00Z').toLocaleDateString('en-GB', { day: 'numeric', month: 'short', timeZone: 'UTC' }))} long={days}
            series={[{ label: "Events", values: days.map(d => byDay.get(d)?.events ?? 0) }]} fmt={num} bars />
          {(u.sources?.length ?? 0) > 0 && <UsageSources sources={u.sources!} sites={sites.data} quota={cap} near={share > 80} />}
        </>
      )}
    </Card>
  )
}

/** UsageSources lists where this month's events come from: site, host name, share, bots. An
 * org near its quota sees what spends it (a host it does not know sends with its public key). */
function UsageSources(props: { sources: UsageSource[]; sites?: Site[]; quota: number; near: boolean }) {
  const domain = new Map((props.sites || []).map(s => [s.id, s.domain]))
  return (
    <div class="usage-sources">
      <h3 class={props.near ? 'warn-text' : ''}>Where this month's events come from{props.near ? ' — near the quota' : ''}</h3>
      <table>
        <thead><tr><th>Site</th><th>Host name in the events</th><th class="num">Events</th><th class="num">Of the quota</th><th class="num">Bots</th></tr></thead>
        <tbody>
          {props.sources.map(s => (
            <tr key={s.site_id + s.hostname}>
              <td>{domain.get(s.site_id) ?? s.site_id}</td>
              <td>{s.hostname || '(none)'}</td>
              <td class="num">{exact(s.events)}</td>
              <td class="num">{props.quota ? pct((s.events / props.quota) * 100) : '–'}</td>
              <td class="num">{exact(s.bot_events)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p class="muted small">The largest sources of the events received this month (UTC), read from the stored events. A host name you do not know means someone sends events with the site's public key from elsewhere; bots are flagged by their user agent.</p>
    </div>
  )
}

function Members(props: { org: Org; admin: boolean; me: string }) {
  const { org } = props
  const list = useAsync<(Member | Person)[]>(async () => {
    if (props.admin) {
      try { return await call<Person[]>('GET', `/orgs/${org.id}/people`) } catch { /* older server: ids only */ }
    }
    return api.members(org.id)
  }, [org.id])
  const [error, setError] = useState('')
  const act = async (f: () => Promise<unknown>) => {
    setError('')
    try { await f(); list.reload(); await loadSession(true) } catch (e) { setError((e as Error).message) }
  }
  return (
    <Card title="Members" id="members">
      {error && <Notice kind="error">{error}</Notice>}
      {!list.data ? <Spinner /> : (
        <ul class="plain-list">
          {list.data.map(m => {
            const p = m as Person
            const you = m.user_id === props.me
            return (
              <li class="list-row member">
                <span class="avatar small" aria-hidden="true">{(p.name || p.email || '?')[0].toUpperCase()}</span>
                <span class="grow">
                  <strong>{p.name || p.email || 'Member ' + m.user_id.slice(0, 8)}{you && <span class="muted"> (you)</span>}</strong>
                  {p.email && <span class="muted small"> · {p.email}</span>}
                </span>
                {props.admin && !you ? (
                  <>
                    <select aria-label={`Role of ${p.email || m.user_id}`} value={m.role} onChange={e => act(() => api.setMember(org.id, m.user_id, e.currentTarget.value as Role))}>
                      <option value="viewer">Viewer</option><option value="admin">Admin</option><option value="owner">Owner</option>
                    </select>
                    <button type="button" class="btn small ghost" onClick={() => confirm('Remove this member from the organization?') && act(() => api.removeMember(org.id, m.user_id))}>Remove</button>
                  </>
                ) : <span class="role">{m.role}</span>}
              </li>
            )
          })}
        </ul>
      )}
    </Card>
  )
}

function Invites(props: { org: Org }) {
  const { org } = props
  const list = useAsync(() => api.invites(org.id), [org.id])
  const [email, setEmail] = useState('')
  const [role, setRole] = useState<Role>('viewer')
  const [made, setMade] = useState<{ invite: Invite; url: string } | null>(null)
  const [error, setError] = useState('')
  const create = async (e: Event) => {
    e.preventDefault()
    setError('')
    try {
      const r = await api.createInvite(org.id, email.trim(), role)
      setMade({ invite: r.invite, url: `${location.origin}/invite#${r.token}` })
      setEmail('')
      list.reload()
    } catch (err) { setError((err as Error).message) }
  }
  const revoke = async (i: Invite) => {
    try { await api.revokeInvite(org.id, i.id); list.reload() } catch (err) { setError((err as Error).message) }
  }
  return (
    <Card title="Invitations" id="invites">
      <p class="muted">Pulse sends no email: send the invitation link to the person yourself. It works once.</p>
      {made && <Notice kind="info"><p><strong>Invitation for {made.invite.email}.</strong> Copy the link now: it is shown only once.</p><CopyField value={made.url} label="invitation link" /></Notice>}
      {list.data && list.data.length > 0 && (
        <ul class="plain-list">
          {list.data.map(i => (
            <li class="list-row">
              <span class="grow"><strong>{i.email}</strong><span class="muted small"> · {i.role} · expires {date(i.expires_at)}</span></span>
              <button type="button" class="btn small ghost" onClick={() => revoke(i)}>Revoke</button>
            </li>
          ))}
        </ul>
      )}
      <form class="form-row inline" onSubmit={create}>
        <input type="email" aria-label="Email to invite" placeholder="colleague@example.com" required value={email} onInput={e => setEmail(e.currentTarget.value)} />
        <select aria-label="Role" value={role} onChange={e => setRole(e.currentTarget.value as Role)}>
          <option value="viewer">Viewer</option><option value="admin">Admin</option><option value="owner">Owner</option>
        </select>
        <button class="btn">Invite</button>
      </form>
      {error && <Notice kind="error">{error}</Notice>}
    </Card>
  )
}

function Keys(props: { org: Org }) {
  const { org } = props
  const list = useAsync(() => api.keys(org.id), [org.id])
  const [name, setName] = useState('')
  const [scopes, setScopes] = useState<Scope[]>(['read'])
  const [made, setMade] = useState<{ key: APIKey; secret: string } | null>(null)
  const [error, setError] = useState('')
  const create = async (e: Event) => {
    e.preventDefault()
    setError('')
    try {
      const r = await api.createKey(org.id, name.trim() || 'API key', scopes)
      setMade({ key: r.api_key, secret: r.secret })
      setName('')
      list.reload()
    } catch (err) { setError((err as Error).message) }
  }
  const revoke = async (k: APIKey) => {
    if (!confirm(`Revoke “${k.name}”? Programs using it stop working at once.`)) return
    try { await api.revokeKey(org.id, k.id); list.reload() } catch (err) { setError((err as Error).message) }
  }
  const toggle = (s: Scope) => setScopes(scopes.includes(s) ? scopes.filter(x => x !== s) : [...scopes, s])
  return (
    <Card title="API keys" id="keys">
      <p class="muted">Secret keys for server-side ingest (<code>ingest</code>), the query API and the live stream (<code>read</code>), and managing the organization (<code>admin</code>).</p>
      {made && <Notice kind="info"><p><strong>“{made.key.name}” created.</strong> Copy the secret now: it is shown only once.</p><CopyField value={made.secret} label="API key secret" /></Notice>}
      {list.data && list.data.length > 0 && (
        <ul class="plain-list">
          {list.data.map(k => (
            <li class="list-row">
              <span class="grow"><strong>{k.name}</strong> <code class="small">{k.prefix}…</code>
                <span class="muted small"> · {k.scopes.join(', ')} · {k.last_used_at && !k.last_used_at.startsWith('0001') ? `used ${date(k.last_used_at)}` : 'never used'}</span></span>
              <button type="button" class="btn small ghost" onClick={() => revoke(k)}>Revoke</button>
            </li>
          ))}
        </ul>
      )}
      <form class="form-row inline wrap" onSubmit={create}>
        <input aria-label="Key name" placeholder="Name, e.g. Backend" value={name} onInput={e => setName(e.currentTarget.value)} />
        <fieldset class="scopes"><legend class="sr-only">Scopes</legend>
          {(['ingest', 'read', 'admin'] as Scope[]).map(s => <label class="check inline"><input type="checkbox" checked={scopes.includes(s)} onChange={() => toggle(s)} />{s}</label>)}
        </fieldset>
        <button class="btn" disabled={scopes.length === 0}>Create key</button>
      </form>
      {error && <Notice kind="error">{error}</Notice>}
    </Card>
  )
}
