// How numbers, durations, dates and dimension values read in the dashboard.

const nf = new Intl.NumberFormat('en-US')
const compact = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 })

/** num: 1,234 below 10,000, then 12.3K. */
export const num = (n: number | null | undefined) => n == null ? '–' : Math.abs(n) < 10000 ? nf.format(Math.round(n * 100) / 100) : compact.format(n)
export const exact = (n: number) => nf.format(n)

export function duration(seconds: number | null | undefined): string {
  if (seconds == null) return '–'
  const s = Math.round(seconds)
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`
}

export const pct = (n: number | null | undefined) => n == null ? '–' : `${Math.round(n * 10) / 10}%`

/** Metrics of the query API, as a person reads them. */
export const METRICS: Record<string, { label: string; fmt: (n: number) => string; lowerIsBetter?: boolean; points?: boolean }> = {
  visitors: { label: 'Unique visitors', fmt: num },
  visits: { label: 'Total visits', fmt: num },
  pageviews: { label: 'Total pageviews', fmt: num },
  views_per_visit: { label: 'Views per visit', fmt: n => (Math.round(n * 100) / 100).toFixed(2) },
  bounce_rate: { label: 'Bounce rate', fmt: pct, lowerIsBetter: true, points: true },
  visit_duration: { label: 'Visit duration', fmt: duration },
  events: { label: 'Total events', fmt: num },
  conversion_rate: { label: 'Conversion rate', fmt: pct, points: true },
  time_on_page: { label: 'Time on page', fmt: duration },
  scroll_depth: { label: 'Scroll depth', fmt: pct, points: true },
}

const regions = (() => { try { return new Intl.DisplayNames(['en'], { type: 'region' }) } catch { return null } })()

/** country turns an ISO 3166-1 code into its English name. */
export function country(code: string): string {
  if (!code || code === '(none)') return 'Unknown'
  if (!/^[A-Z]{2}$/.test(code)) return code
  try { return regions?.of(code) || code } catch { return code }
}

/** label is how a dimension value reads in a list. */
export function label(dim: string, v: string): string {
  if (dim === 'visit:country' || dim === 'countries') return country(v)
  if (v === '(direct)' || ((v === '(none)' || v === '') && (dim.includes('source') || dim === 'sources' || dim.includes('referrer')))) return 'Direct / None'
  if (v === '(none)' || v === '') return '(none)'
  if (/device|browser|os/.test(dim) && /^[a-z]/.test(v)) return v[0].toUpperCase() + v.slice(1)
  return v
}

/** source is how a live feed's source reads. */
export const source = (v?: string) => !v || v === '(none)' || v === '(direct)' ? 'Direct' : v

/** ago: "just now", "12s ago", "3m ago". */
export function ago(ms: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000))
  if (s < 5) return 'just now'
  if (s < 60) return `${s}s ago`
  if (s < 3600) return `${Math.floor(s / 60)}m ago`
  return `${Math.floor(s / 3600)}h ago`
}

export const clock = (ms: number) => new Date(ms).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' })

export function date(iso: string, opts: Intl.DateTimeFormatOptions = { day: 'numeric', month: 'short', year: 'numeric' }): string {
  if (!iso || iso.startsWith('0001-')) return '–'
  const d = new Date(iso)
  return isNaN(+d) ? iso : d.toLocaleDateString('en-GB', opts)
}

/** ymd is a local date as YYYY-MM-DD. */
export const ymd = (d: Date) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`

/** bucket formats a time bucket of the query API ("2026-11-24" or an RFC 3339 time) for an axis. */
export function bucket(v: string, dim: string, long = false): string {
  if (dim === 'time:minute' || dim === 'time:hour') {
    const t = v.slice(11, 16)
    return long ? `${dayLabel(v.slice(0, 10))}, ${t}` : t
  }
  if (dim === 'time:month') {
    const [y, m] = v.split('-').map(Number)
    return new Date(Date.UTC(y, m - 1, 1)).toLocaleDateString('en-GB', { month: 'short', year: long ? 'numeric' : '2-digit', timeZone: 'UTC' })
  }
  return long ? dayLabel(v, true) : dayLabel(v)
}

function dayLabel(v: string, weekday = false): string {
  const [y, m, d] = v.split('-').map(Number)
  if (!y) return v
  return new Date(Date.UTC(y, m - 1, d)).toLocaleDateString('en-GB', { day: 'numeric', month: 'short', weekday: weekday ? 'short' : undefined, timeZone: 'UTC' })
}

/**
 * siteDate reads an RFC 3339 time of the query API (written with the site's UTC offset) as
 * the site's calendar day and clock: "7 Nov", "7 Nov 14:05" with time, and the year when it
 * is not this one.
 */
export function siteDate(rfc: string, time = false): string {
  const [y, m, d] = rfc.slice(0, 10).split('-').map(Number)
  if (!y) return rfc
  const day = new Date(Date.UTC(y, m - 1, d)).toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: y === new Date().getFullYear() ? undefined : 'numeric', timeZone: 'UTC' })
  const clock = rfc.slice(11, 16)
  return time && clock && clock !== '00:00' ? `${day} ${clock}` : day
}

/** rangeText names a range of the query API (start included, end excluded) as a person reads it. */
export function rangeText(r: [string, string]): string {
  const [from, to] = r
  const start = siteDate(from, true)
  if (/T00:00:00/.test(to)) {
    // The end is a midnight: the range ends with the day before.
    const [y, m, d] = to.slice(0, 10).split('-').map(Number)
    const last = new Date(Date.UTC(y, m - 1, d - 1)).toISOString().slice(0, 10)
    const end = siteDate(last)
    return end === start ? start : `${start} – ${end}`
  }
  const endDay = siteDate(to), clock = to.slice(11, 16)
  return `${endDay === start ? start : `${start} – ${endDay}`} until ${clock}`
}

/**
 * noChangeReason says why a comparison has no changes (docs/query-api.md, "Comparisons"), or
 * '' when it has them: "no data before 7 Nov" when the site's data starts after the earlier
 * period does.
 */
export function noChangeReason(c?: { change_unavailable?: string; first_data?: string }): string {
  if (!c?.change_unavailable) return ''
  if (c.change_unavailable === 'not_covered') return c.first_data ? `no data before ${siteDate(c.first_data)}` : 'no earlier data'
  return 'no comparison'
}

/**
 * partialBucket is the index of the time bucket (values of dim, in order) that holds until,
 * the moment a range that has not ended was answered up to; -1 without one. Later buckets
 * have not begun.
 */
export function partialBucket(buckets: string[], dim: string, until?: string): number {
  if (!until) return -1
  const fine = dim === 'time:minute' || dim === 'time:hour'
  const at = fine ? Date.parse(until) : 0
  const day = until.slice(0, 10)
  let found = -1
  buckets.forEach((b, i) => { if (fine ? Date.parse(b) <= at : b <= day) found = i })
  return found
}
