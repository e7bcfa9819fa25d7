// The HTTP API of docs/auth.md and docs/query-api.md, typed.

export type Role = 'viewer' | 'admin' | 'owner'
export type Scope = 'ingest' | 'read' | 'admin'

export interface User { id: string; email: string; name: string; operator: boolean; created_at: string }
export interface Membership { org_id: string; user_id: string; role: Role; created_at: string }
export interface Quota { events_per_second: number; events_per_month: number; max_connections: number }
export interface Org { id: string; name: string; quota: Quota; created_at: string }
export interface Site {
  id: string; org_id: string; domain: string; public_key: string; allowed_origins: string[]
  time_zone: string; honor_dnt: boolean; retention_days?: number; identity_secret?: string; created_at: string
}
export interface Member { org_id: string; user_id: string; role: Role; created_at: string; email?: string; name?: string }
export interface Invite { id: string; org_id: string; email: string; role: Role; expires_at: string; created_at: string }
export interface APIKey { id: string; org_id: string; name: string; prefix: string; scopes: Scope[]; created_at: string; last_used_at: string }
export interface ShareLink { id: string; org_id: string; site_id: string; name: string; expires_at: string; created_at: string }
export interface UsageDay { day: string; events: number; rejected_events: number }
/** UsageSource: a site and host name of the org's events received this month (the largest first). */
export interface UsageSource { site_id: string; hostname: string; events: number; bot_events: number }
export interface Usage { org_id: string; quota: Quota; days: UsageDay[]; sources?: UsageSource[] }
export interface Me { user?: User; memberships?: Membership[]; share_link?: ShareLink }

// Query API (docs/query-api.md).
export type Filter = [string, string, string[]]
export interface QuerySpec {
  site_id: string
  metrics: string[]
  date_range: string | [string, string]
  dimensions?: string[]
  filters?: unknown[]
  order_by?: [string, 'asc' | 'desc'][]
  limit?: number
  include?: { totals?: boolean; comparison?: string; time_labels?: boolean }
}
export interface Comparison { metrics: (number | null)[]; change: (number | null)[] }
export interface QueryRow { dimensions: string[]; metrics: number[]; comparison?: Comparison }
/** ComparisonMeta says what a comparison compared (docs/query-api.md, "Comparisons"). */
export interface ComparisonMeta {
  mode: string
  /** the comparison range actually queried: while the range has not ended, the same part of the earlier period */
  date_range: [string, string]
  /** why every change is null: 'not_covered' (the site's data starts after the comparison range does) */
  change_unavailable?: string
  /** the site's first counted event, with change_unavailable */
  first_data?: string
}
export interface QueryResult {
  results: QueryRow[]
  totals?: { metrics: number[]; comparison?: Comparison }
  meta: {
    metrics: string[]; dimensions: string[]; time_zone: string; date_range: [string, string]
    /** set while the range has not ended: the moment it was answered up to */
    incomplete_until?: string
    comparison_date_range?: [string, string]; comparison?: ComparisonMeta; total_rows: number
    /** what the answer had to do differently, in words for the user (a site's time zone the database does not know: UTC) */
    warnings?: string[]
  }
}
export interface FunnelStep { label: string; visitors: number; conversion_rate: number; conversion_rate_step: number; dropoff: number }
export interface FunnelResult { steps: FunnelStep[]; breakdown?: { value: string; steps: FunnelStep[] }[]; meta: { time_zone: string; date_range: [string, string]; window: number; warnings?: string[] } }
export interface Cohort { cohort: string; users: number; retained: number[]; rate: number[] }
export interface RetentionResult {
  cohorts: Cohort[]
  /** incomplete_period: the start of the day or week that holds incomplete_until, whose cells count so far */
  meta: { time_zone: string; period: string; date_range: [string, string]; incomplete_until?: string; incomplete_period?: string; warnings?: string[] }
}

/** ApiError is a failed API call: status and the server's message. */
export class ApiError extends Error {
  constructor(public status: number, message: string, public field?: string) { super(message) }
}

/** shareToken, when set, authenticates every call as a share link (the public view). */
let shareToken = ''
export const setShareToken = (t: string) => { shareToken = t }
export const isShare = () => shareToken !== ''
export const getShareToken = () => shareToken

/** onUnauthorized is called when a signed-in call answers 401 (the session ended). */
let unauthorized: () => void = () => {}
export const onUnauthorized = (f: () => void) => { unauthorized = f }

/** RETRY_LIMIT_S: a 429 whose Retry-After is at most this many seconds is retried once, after it. */
const RETRY_LIMIT_S = 5

/**
 * request sends one API call and answers its response when it is OK; otherwise it throws
 * an ApiError with the server's message. A 429 with a short Retry-After is retried once.
 */
async function request(method: string, path: string, body: unknown, accept: string, signal?: AbortSignal, retried = false): Promise<Response> {
  const headers: Record<string, string> = { Accept: accept }
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  if (shareToken) headers.Authorization = 'Bearer ' + shareToken
  let res: Response
  try {
    res = await fetch('/api/v1' + path, {
      method, headers, signal, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    })
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e
    throw new ApiError(0, 'Pulse cannot be reached: check your connection')
  }
  const wait = Number(res.headers.get('Retry-After'))
  if (res.status === 429 && !retried && wait > 0 && wait <= RETRY_LIMIT_S) {
    await new Promise(r => setTimeout(r, wait * 1000))
    if (!signal?.aborted) return request(method, path, body, accept, signal, true)
  }
  if (res.ok) return res
  const data = parseJSON(await res.text())
  if (res.status === 401 && !shareToken && path !== '/login') unauthorized()
  const msg = data?.error || (res.status === 404 ? 'not found' : `request failed (${res.status})`)
  throw new ApiError(res.status, msg, data?.field)
}

/** parseJSON is the value of a JSON text, null for an empty or other text. */
function parseJSON(text: string): any {
  try { return text ? JSON.parse(text) : null } catch { return null }
}

export async function call<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const res = await request(method, path, body, 'application/json', signal)
  return parseJSON(await res.text()) as T
}

/** MAX_LIMIT is the most rows one query answers (MaxLimit in dashboard/limits.go). */
export const MAX_LIMIT = 10000

/** CSVFile is a query's result as CSV (docs/query-api.md, "Export (CSV)") and the server's name for it. */
export interface CSVFile { blob: Blob; filename: string }

/** queryCSV runs a query for its CSV: the same result, as the file the API names in Content-Disposition. */
export async function queryCSV(spec: QuerySpec, signal?: AbortSignal): Promise<CSVFile> {
  const res = await request('POST', '/query', spec, 'text/csv', signal)
  const name = attachmentName(res.headers.get('Content-Disposition'))
  return { blob: await res.blob(), filename: name || 'pulse.csv' }
}

/** attachmentName is the filename of a Content-Disposition header ('' without one). */
export function attachmentName(header: string | null): string {
  if (!header) return ''
  const star = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(header)
  if (star) { try { return decodeURIComponent(star[1].trim()) } catch { /* malformed: try the plain one */ } }
  const m = /filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]+))/i.exec(header)
  if (!m) return ''
  return m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2].trim()
}

export const api = {
  login: (email: string, password: string) => call<{ user: User; expires_at: string }>('POST', '/login', { email, password }),
  logout: () => call<unknown>('POST', '/logout'),
  me: () => call<Me>('GET', '/me'),
  acceptInvite: (token: string, name: string, password: string) => call<unknown>('POST', '/invites/accept', { token, name, password }),
  orgs: () => call<Org[]>('GET', '/orgs'),
  org: (id: string) => call<Org>('GET', `/orgs/${id}`),
  renameOrg: (id: string, name: string) => call<Org>('PATCH', `/orgs/${id}`, { name }),
  usage: (id: string, from: string, to: string) => call<Usage>('GET', `/orgs/${id}/usage?from=${from}&to=${to}`),
  sites: (org: string) => call<Site[]>('GET', `/orgs/${org}/sites`),
  createSite: (org: string, domain: string, time_zone: string) => call<Site>('POST', `/orgs/${org}/sites`, { domain, time_zone }),
  site: (id: string) => call<Site>('GET', `/sites/${id}`),
  updateSite: (id: string, patch: Partial<Pick<Site, 'allowed_origins' | 'time_zone' | 'honor_dnt' | 'retention_days'>>) => call<Site>('PATCH', `/sites/${id}`, patch),
  rotateIdentitySecret: (id: string) => call<Site>('POST', `/sites/${id}/identity-secret`),
  shareLinks: (site: string) => call<ShareLink[]>('GET', `/sites/${site}/share-links`),
  createShareLink: (site: string, name: string, expires_in: string) => call<{ share_link: ShareLink; token: string }>('POST', `/sites/${site}/share-links`, { name, expires_in }),
  revokeShareLink: (site: string, id: string) => call<unknown>('DELETE', `/sites/${site}/share-links/${id}`),
  members: (org: string) => call<Member[]>('GET', `/orgs/${org}/members`),
  setMember: (org: string, user: string, role: Role) => call<Member>('PUT', `/orgs/${org}/members/${user}`, { role }),
  removeMember: (org: string, user: string) => call<unknown>('DELETE', `/orgs/${org}/members/${user}`),
  invites: (org: string) => call<Invite[]>('GET', `/orgs/${org}/invites`),
  createInvite: (org: string, email: string, role: Role) => call<{ invite: Invite; token: string }>('POST', `/orgs/${org}/invites`, { email, role }),
  revokeInvite: (org: string, id: string) => call<unknown>('DELETE', `/orgs/${org}/invites/${id}`),
  keys: (org: string) => call<APIKey[]>('GET', `/orgs/${org}/keys`),
  createKey: (org: string, name: string, scopes: Scope[]) => call<{ api_key: APIKey; secret: string }>('POST', `/orgs/${org}/keys`, { name, scopes }),
  revokeKey: (org: string, id: string) => call<unknown>('DELETE', `/orgs/${org}/keys/${id}`),
  query: (spec: QuerySpec, signal?: AbortSignal) => call<QueryResult>('POST', '/query', spec, signal),
  funnel: (spec: unknown, signal?: AbortSignal) => call<FunnelResult>('POST', '/funnel', spec, signal),
  retention: (spec: unknown, signal?: AbortSignal) => call<RetentionResult>('POST', '/retention', spec, signal),
}

/** notAvailable tells a query endpoint that this server does not have yet (404 on the route itself). */
export const notAvailable = (e: unknown) => e instanceof ApiError && e.status === 404 && !/site/.test(e.message)
