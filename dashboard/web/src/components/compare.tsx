// How a comparison reads: the change against the earlier period, or why there is none, and
// which period it was (docs/query-api.md, "Comparisons").
import type { ComparisonMeta } from '../api'
import { noChangeReason, rangeText } from '../format'
import { Change } from './ui'

/**
 * ComparedChange is a metric's change against the earlier period and, with fmt, the earlier
 * value ("↑12% vs 1,204"); when the earlier period is not covered by data, it says so ("no
 * data before 7 Nov") instead of a percentage.
 */
export function ComparedChange(props: { meta?: ComparisonMeta; change?: number | null; prev?: number | null; fmt?: (n: number) => string; points?: boolean; lowerIsBetter?: boolean }) {
  const reason = noChangeReason(props.meta)
  if (reason) return <span class="change-note" title={`No change is shown: the site has ${reason}, so the earlier period was not measured`}>{reason}</span>
  // Nothing in a measured earlier period: no percentage of zero.
  if (props.change == null && !props.points && (props.prev ?? 0) === 0) return <span class="change-note" title="There was none in the earlier period, so there is no percentage">from 0</span>
  return (
    <>
      <Change value={props.change} points={props.points} lowerIsBetter={props.lowerIsBetter} />
      {props.fmt && <> <span class="muted">vs {props.fmt(props.prev ?? 0)}</span></>}
    </>
  )
}

/**
 * ComparisonCaption names the period the report is compared with: for a range that has not
 * ended, the same part of the earlier period; and why no change is shown, when none is.
 */
export function ComparisonCaption(props: { meta?: ComparisonMeta; until?: string }) {
  const { meta } = props
  if (!meta) return null
  const year = meta.mode === 'year_over_year'
  const what = props.until
    ? (year ? 'the same dates a year earlier, as far as this period has come' : 'the same part of the previous period as this one so far')
    : (year ? 'the same dates a year earlier' : 'the previous period')
  const reason = noChangeReason(meta)
  return (
    <p class="compare-caption muted small" data-compare-range={meta.date_range.join('/')}>
      Compared with <strong class="compare-range">{rangeText(meta.date_range)}</strong> ({what}).
      {reason && <> <span class="change-note">No change is shown: {reason}.</span></>}
    </p>
  )
}
