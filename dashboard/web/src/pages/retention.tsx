// Retention: cohorts of identified users by first day or week, and the share of each that
// came back in every later period (?period=week&range=90d). The cells of the period that is
// not over yet are hatched and say "so far", not shaded as (low) retention.
import { useEffect } from 'preact/hooks'
import { api, notAvailable, type Site } from '../api'
import { navigate, useLocation, withQuery } from '../router'
import { bucket, exact } from '../format'
import { Card, Notice, Segmented, Spinner, useAsync, Warnings } from '../components/ui'

const RANGES: [string, string][] = [['30d', '30 days'], ['90d', '90 days'], ['12mo', '12 months']]

export function Retention(props: { site: Site }) {
  const { site } = props
  const loc = useLocation()
  const period = loc.query.get('period') === 'day' ? 'day' : 'week'
  const range = RANGES.some(r => r[0] === loc.query.get('range')) ? loc.query.get('range')! : '90d'
  const periods = period === 'day' ? 14 : 8
  useEffect(() => { document.title = `Retention · ${site.domain} · Pulse` }, [site.domain])
  const res = useAsync(signal => api.retention({ site_id: site.id, date_range: range, period, periods }, signal), [site.id, period, range])
  if (res.error && notAvailable(res.error)) return <div class="container"><Notice kind="warn"><strong>Retention is not available on this server yet.</strong> It needs <code>POST /api/v1/retention</code>.</Notice></div>
  const cohorts = res.data?.cohorts || []
  const open = res.data?.meta.incomplete_period
  const step = period === 'day' ? 1 : 7
  const unit = period === 'day' ? 'day' : 'week'
  return (
    <div class="container">
      <div class="page-head">
        <div><h1>Retention</h1><p class="muted">Identified users (<code>pulse.identify</code>) by when they were first seen, and how many came back.</p></div>
        <div class="head-controls">
          <Segmented label="Cohort period" value={period} onChange={v => navigate(withQuery(loc, { period: v === 'week' ? null : v }), { replace: true })} options={[['day', 'Daily'], ['week', 'Weekly']]} />
          <Segmented label="Range" value={range} onChange={v => navigate(withQuery(loc, { range: v === '90d' ? null : v }), { replace: true })} options={RANGES} />
        </div>
      </div>
      <Warnings warnings={res.data?.meta.warnings} />
      <Card class="retention">
        {res.error ? <Notice kind="error">{res.error.message}</Notice>
          : !res.data ? <Spinner />
          : cohorts.length === 0 ? <p class="muted">No identified users in this range. Call <code>pulse.identify(userId)</code> when people sign in to see how many come back.</p>
          : (
            <div class="table-scroll">
              <table class="cohorts">
                <thead>
                  <tr>
                    <th scope="col">{period === 'day' ? 'Day' : 'Week of'}</th>
                    <th scope="col" class="num">Users</th>
                    {Array.from({ length: periods + 1 }, (_, k) => <th scope="col" class="num">{k === 0 ? (period === 'day' ? 'Day 0' : 'Week 0') : `${k}`}</th>)}
                  </tr>
                </thead>
                <tbody>
                  {cohorts.map(c => (
                    <tr>
                      <th scope="row">{bucket(c.cohort, 'time:day')}</th>
                      <td class="num">{exact(c.users)}</td>
                      {Array.from({ length: periods + 1 }, (_, k) => k >= c.rate.length ? <td class="heat none" />
                        : open && addDays(c.cohort, k * step) === open
                          ? <td class="num heat partial" data-partial="true" title={`${exact(c.retained[k])} of ${exact(c.users)} so far: this ${unit} is not over`}>{Math.round(c.rate[k])}%<span class="sr-only"> so far</span></td>
                          : <td class="num heat" style={{ '--heat': String(c.rate[k] / 100) }} title={`${exact(c.retained[k])} of ${exact(c.users)}`}>{Math.round(c.rate[k])}%</td>)}
                    </tr>
                  ))}
                </tbody>
              </table>
              {open && <p class="muted small cohorts-key"><span class="heat-key partial" aria-hidden="true" /> This {unit} is not over: its cells count the users so far.</p>}
            </div>
          )}
      </Card>
    </div>
  )
}

/** addDays is the date n days after a YYYY-MM-DD date. */
function addDays(date: string, n: number): string {
  const [y, m, d] = date.split('-').map(Number)
  return new Date(Date.UTC(y, m - 1, d + n)).toISOString().slice(0, 10)
}
