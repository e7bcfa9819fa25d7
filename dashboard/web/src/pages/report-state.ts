// The report's state lives in the URL, so a link reproduces the view:
//   ?range=30d | ?from=2026-11-01&to=2026-11-24   the date range (site time zone)
//   &compare=previous_period | year_over_year      the comparison
//   &metric=pageviews                              the chart's metric
//   &f=is,visit:source,Google (repeated)           filters: operator, dimension, value
//   &sources=visit:channel …                       the chosen tab of each breakdown panel
import type { Loc } from '../router'
import type { Filter } from '../api'

export const PRESETS: [string, string][] = [
  ['today', 'Today'], ['yesterday', 'Yesterday'], ['7d', 'Last 7 days'], ['28d', 'Last 28 days'],
  ['30d', 'Last 30 days'], ['90d', 'Last 90 days'], ['month', 'This month'], ['last_month', 'Last month'],
  ['year', 'This year'], ['12mo', 'Last 12 months'], ['all', 'All time'],
]
export const DEFAULT_RANGE = '30d'

export const DIMENSIONS: Record<string, string> = {
  'event:page': 'Page', 'event:name': 'Event', 'event:hostname': 'Hostname',
  'visit:entry_page': 'Entry page', 'visit:exit_page': 'Exit page',
  'visit:source': 'Source', 'visit:referrer': 'Referrer', 'visit:channel': 'Channel',
  'visit:utm_source': 'UTM source', 'visit:utm_medium': 'UTM medium', 'visit:utm_campaign': 'UTM campaign',
  'visit:utm_term': 'UTM term', 'visit:utm_content': 'UTM content',
  'visit:country': 'Country', 'visit:region': 'Region', 'visit:city': 'City',
  'visit:browser': 'Browser', 'visit:browser_version': 'Browser version', 'visit:os': 'Operating system',
  'visit:os_version': 'OS version', 'visit:device': 'Device',
}

export const OPERATORS: Record<string, string> = {
  is: 'is', is_not: 'is not', contains: 'contains', contains_not: 'does not contain', matches: 'matches', matches_not: 'does not match',
}

export interface ReportState {
  range: string | [string, string]
  compare: string
  metric: string
  filters: Filter[]
}

export function readState(loc: Loc): ReportState {
  const q = loc.query
  const from = q.get('from'), to = q.get('to')
  const day = /^\d{4}-\d{2}-\d{2}$/
  const range: ReportState['range'] = from && to && day.test(from) && day.test(to) ? [from, to] : (PRESETS.some(p => p[0] === q.get('range')) ? q.get('range')! : DEFAULT_RANGE)
  const filters: Filter[] = []
  for (const f of q.getAll('f')) {
    const i = f.indexOf(','), j = f.indexOf(',', i + 1)
    if (i < 0 || j < 0) continue
    const op = f.slice(0, i), dim = f.slice(i + 1, j), value = f.slice(j + 1)
    if (OPERATORS[op] && DIMENSIONS[dim]) filters.push([op, dim, [value]])
  }
  return { range, compare: q.get('compare') || '', metric: q.get('metric') || 'visitors', filters }
}

export const filterParam = (f: Filter) => `${f[0]},${f[1]},${f[2][0]}`

/** rangeDays is the number of days a range covers, roughly (to choose the chart's buckets). */
export function rangeDays(r: ReportState['range']): number {
  if (Array.isArray(r)) return Math.round((Date.parse(r[1]) - Date.parse(r[0])) / 864e5) + 1
  switch (r) {
    case 'today': case 'yesterday': return 1
    case '7d': return 7
    case '28d': return 28
    case '30d': case 'month': case 'last_month': return 30
    case '90d': return 90
    default: return 366
  }
}

/** interval is the time dimension of the chart for a range. */
export function interval(r: ReportState['range']): string {
  const d = rangeDays(r)
  return d <= 2 ? 'time:hour' : d <= 92 ? 'time:day' : 'time:month'
}

export function rangeLabel(r: ReportState['range']): string {
  if (Array.isArray(r)) {
    const f = (s: string) => new Date(s + 'T00:00:00Z').toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' })
    return r[0] === r[1] ? f(r[0]) : `${f(r[0])} – ${f(r[1])}`
  }
  return PRESETS.find(p => p[0] === r)?.[1] || r
}
