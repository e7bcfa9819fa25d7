// Who is signed in, their organizations and the sites they can see: loaded once, reloaded
// after a change that affects them.
import { useEffect, useState } from 'preact/hooks'
import { api, ApiError, type Me, type Org, type Role, type Site } from './api'

export interface Session { me: Me; orgs: Org[]; sites: Site[] }

let current: Session | null = null
/** failure is why the session could not be loaded (other than a 401, which goes to the login page). */
let failure: Error | null = null
let loading: Promise<Session> | null = null
const listeners = new Set<() => void>()

export async function loadSession(force = false): Promise<Session> {
  if (current && !force) return current
  if (loading && !force) return loading
  loading = (async () => {
    failure = null
    const me = await api.me()
    const orgs = await api.orgs()
    const sites = (await Promise.all(orgs.map(o => api.sites(o.id)))).flat()
    sites.sort((a, b) => a.domain.localeCompare(b.domain))
    current = { me, orgs, sites }
    listeners.forEach(f => f())
    return current
  })()
  try {
    return await loading
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) { failure = e as Error; listeners.forEach(f => f()) }
    throw e
  } finally {
    loading = null
  }
}

export const sessionFailure = () => failure

export function clearSession() {
  current = null
  listeners.forEach(f => f())
}

/** useSession returns the session once loaded (null before), re-rendering when it changes. */
export function useSession(): Session | null {
  const [, setVersion] = useState(0)
  useEffect(() => {
    const f = () => setVersion(v => v + 1)
    listeners.add(f)
    if (!current) loadSession().then(f, () => {})
    return () => { listeners.delete(f) }
  }, [])
  return current
}

/** roleIn is the signed-in user's role in an org (operators act as owners). */
export function roleIn(s: Session | null, org: string): Role | null {
  if (!s?.me.user) return null
  if (s.me.user.operator) return 'owner'
  return s.me.memberships?.find(m => m.org_id === org)?.role || null
}

export const canAdmin = (s: Session | null, org: string) => {
  const r = roleIn(s, org)
  return r === 'admin' || r === 'owner'
}
