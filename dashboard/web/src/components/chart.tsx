// Charts drawn by uPlot: the report's time series, the live chart and the site list's
// sparklines. Colours come from the theme's CSS variables; a theme change redraws.
import uPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'
import { useEffect, useRef } from 'preact/hooks'
import { cssVar, useTheme } from '../theme'

/** useUplot creates a chart in the returned element, resizes it with its box and rebuilds it when deps change. */
function useUplot(make: (width: number) => uPlot.Options, data: uPlot.AlignedData, deps: unknown[]) {
  const el = useRef<HTMLDivElement>(null)
  const plot = useRef<uPlot | null>(null)
  const theme = useTheme()
  useEffect(() => {
    const box = el.current!
    const u = new uPlot(make(box.clientWidth || 300), data, box)
    plot.current = u
    let w = box.clientWidth
    const ro = new ResizeObserver(() => {
      if (box.clientWidth && box.clientWidth !== w) { w = box.clientWidth; u.setSize({ width: w, height: u.height }) }
    })
    ro.observe(box)
    return () => { ro.disconnect(); u.destroy(); plot.current = null }
  }, [theme, ...deps])
  useEffect(() => { plot.current?.setData(data) }, [data])
  return el
}

function gradient(u: uPlot, color: string, alpha: number) {
  const ctx = u.ctx, h = u.bbox.height || 1
  const g = ctx.createLinearGradient(0, u.bbox.top, 0, u.bbox.top + h)
  g.addColorStop(0, withAlpha(color, alpha))
  g.addColorStop(1, withAlpha(color, 0))
  return g
}

function withAlpha(color: string, a: number) {
  const m = /^#([0-9a-f]{6})$/i.exec(color)
  if (!m) return color
  const n = parseInt(m[1], 16)
  return `rgba(${n >> 16},${(n >> 8) & 255},${n & 255},${a})`
}

function axis(stroke: string, grid: string, values?: uPlot.Axis['values'], size = 50): uPlot.Axis {
  return {
    stroke, size, values, gap: 8,
    font: '12px "Inter Variable", system-ui, sans-serif',
    grid: { stroke: grid, width: 1 },
    ticks: { show: false },
  }
}

export interface TimeSeries { label: string; values: (number | null)[]; compare?: boolean }

/**
 * splitPartial draws the bucket at index partial (the one that holds now: its value is so
 * far) apart: solid values up to the bucket before it, and the step into it on its own.
 */
function splitPartial(values: (number | null)[], partial: number): [(number | null)[], (number | null)[]] {
  const solid = values.map((v, i) => i < partial ? v : null)
  const soFar = values.map((v, i) => i === partial || i === partial - 1 ? v : null)
  return [solid, soFar]
}

/** soFarLabel writes "so far" above the point at index i of series s (canvas pixels). */
function soFarLabel(u: uPlot, s: number, i: number, color: string) {
  const v = u.data[s]?.[i]
  if (v == null) return
  const px = uPlot.pxRatio
  const x = u.valToPos(i, 'x', true), y = u.valToPos(v, 'y', true)
  const ctx = u.ctx
  ctx.save()
  ctx.font = `600 ${11 * px}px "Inter Variable", system-ui, sans-serif`
  ctx.fillStyle = color
  ctx.textBaseline = 'bottom'
  const w = ctx.measureText('so far').width
  ctx.textAlign = x + w / 2 > u.bbox.left + u.bbox.width ? 'right' : 'center'
  ctx.fillText('so far', x, Math.max(u.bbox.top + 12 * px, y - 8 * px))
  ctx.restore()
}

/**
 * TimeChart is the report's line chart over time buckets: the metric, and optionally the
 * comparison period dashed; a tooltip names the bucket and both values. partial is the index
 * of the bucket that holds now (its value is so far): the line into it is dashed and
 * labelled "so far".
 */
export function TimeChart(props: { labels: string[]; long: string[]; series: TimeSeries[]; fmt: (n: number) => string; height?: number; bars?: boolean; partial?: number }) {
  const { labels, series, height = 280, bars } = props
  const partial = props.partial ?? -1
  const tip = useRef<HTMLDivElement>(null)
  const cur = useRef(props)
  cur.current = props
  // Bars of zero are left out (uPlot would draw a hairline for each).
  const drawn = series.flatMap(s => {
    const values = bars ? s.values.map(v => v === 0 ? null : v) : s.values
    return partial >= 0 && !s.compare && !bars ? splitPartial(values, partial) : [values]
  })
  const data: uPlot.AlignedData = [labels.map((_, i) => i), ...drawn]
  const el = useUplot(width => {
    const accent = cssVar('--chart'), muted = cssVar('--chart-compare'), text = cssVar('--text-3'), grid = cssVar('--grid')
    const main = series.findIndex(s => !s.compare)
    return {
      width, height,
      padding: [12, 20, 0, 0],
      legend: { show: false },
      scales: { x: { time: false }, y: { range: (_u, _min, max) => [0, niceMax(max)] } },
      cursor: { points: { size: 8, width: 2 }, drag: { x: false, y: false } },
      axes: [
        axis(text, 'transparent', (_u, splits) => splits.map(i => labels[i] ?? ''), 32),
        axis(text, grid, (_u, splits) => splits.map(v => cur.current.fmt(v)), 56),
      ],
      series: [
        {},
        ...series.flatMap((s): uPlot.Series[] => s.compare
          ? [{ label: s.label, stroke: muted, width: 1.5, dash: [5, 4], points: { show: false } }]
          : bars
            ? [{ label: s.label, stroke: accent, fill: accent, paths: uPlot.paths.bars!({ size: [0.6, 24], gap: 2 }), points: { show: false } }]
            : partial >= 0
              ? [{ label: s.label, stroke: accent, width: 2.5, fill: (u: uPlot) => gradient(u, accent, 0.22), points: { show: labels.length < 3 } },
                { label: s.label + ' (so far)', stroke: accent, width: 2, dash: [4, 4], fill: (u: uPlot) => gradient(u, accent, 0.1), points: { show: partial === 0, size: 6 } }]
              : [{ label: s.label, stroke: accent, width: 2.5, fill: (u: uPlot) => gradient(u, accent, 0.22), points: { show: labels.length < 3 } }]),
      ],
      hooks: {
        draw: [u => {
          // The so-far series of the main one follows it: data index main + 2.
          if (partial >= 0 && !bars && main >= 0) soFarLabel(u, main + 2, partial, text)
        }],
        setCursor: [u => {
          const t = tip.current
          const i = u.cursor.idx
          const { series, labels, long, fmt } = cur.current
          if (!t) return
          if (i == null || u.cursor.left == null || u.cursor.left < 0) { t.hidden = true; return }
          t.hidden = false
          t.innerHTML = ''
          const head = document.createElement('div')
          head.className = 'tip-head'
          head.textContent = (long[i] ?? labels[i]) + (i === (cur.current.partial ?? -1) ? ' · so far' : '')
          t.append(head)
          for (const s of series) {
            const row = document.createElement('div')
            row.className = 'tip-row' + (s.compare ? ' compare' : '')
            const v = s.values[i]
            row.textContent = `${s.label}: ${v == null ? '–' : fmt(v)}`
            t.append(row)
          }
          const left = u.valToPos(i, 'x') + u.over.offsetLeft
          const w = t.offsetWidth
          t.style.left = Math.max(0, Math.min(u.width - w, left - w / 2)) + 'px'
        }],
      },
    }
  }, data, [labels.join(','), series.length, series.map(s => s.label).join(), height, bars, partial])
  return (
    <div class="chart" style={{ height: height + 'px' }} data-partial={partial >= 0 ? String(partial) : undefined}>
      <div ref={el} />
      <div class="chart-tip" ref={tip} hidden />
    </div>
  )
}

/** niceMax rounds the top of the y scale up to a readable number. */
function niceMax(max: number | null): number {
  if (!max || max <= 0) return 4
  const mag = 10 ** Math.floor(Math.log10(max))
  for (const f of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (f * mag >= max * 1.05) return f * mag
  return 10 * mag
}

/**
 * LiveChart: events per second (or minute) as bars that scroll left as time passes;
 * pageviews in the accent colour in front of all events.
 */
export function LiveChart(props: { end: number; events: number[]; pageviews: number[]; step: number; height?: number }) {
  const { end, events, pageviews, step, height = 200 } = props
  const xs = events.map((_, i) => (end - events.length + 1 + i) * step)
  const data: uPlot.AlignedData = [xs, events, pageviews]
  const el = useUplot(width => {
    const accent = cssVar('--chart'), other = cssVar('--chart-2'), text = cssVar('--text-3'), grid = cssVar('--grid')
    const bars = uPlot.paths.bars!({ size: [0.7, 12], gap: 1 })
    return {
      width, height,
      padding: [8, 28, 0, 0],
      legend: { show: false },
      cursor: { show: false },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, niceMax(Math.max(max, 3))] } },
      axes: [
        { ...axis(text, 'transparent', (_u, splits) => splits.map(v => clockLabel(v, step)), 30), space: 90 },
        axis(text, grid, (_u, splits) => splits.map(v => Number.isInteger(v) ? String(v) : ''), 36),
      ],
      series: [
        {},
        { label: 'All events', stroke: other, fill: other, paths: bars, points: { show: false } },
        { label: 'Pageviews', stroke: accent, fill: accent, paths: bars, points: { show: false } },
      ],
    }
  }, data, [step, height])
  return <div class="chart" style={{ height: height + 'px' }}><div ref={el} /></div>
}

/** clockLabel is a live chart's time label: 14:05:30 per second, 14:05 per minute. */
function clockLabel(sec: number, step: number): string {
  const d = new Date(sec * 1000)
  const p = (n: number) => String(n).padStart(2, '0')
  return step < 60 ? `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}` : `${p(d.getHours())}:${p(d.getMinutes())}`
}

/**
 * Sparkline is a small area chart without axes: the site list's last days. With partial, the
 * last value is so far (today): the step into it is dashed.
 */
export function Sparkline(props: { values: number[]; height?: number; partial?: boolean }) {
  const { values, height = 48, partial = false } = props
  const last = partial ? values.length - 1 : -1
  const data: uPlot.AlignedData = [values.map((_, i) => i), ...(last >= 0 ? splitPartial(values, last) : [values])]
  const el = useUplot(width => {
    const accent = cssVar('--chart')
    return {
      width, height,
      padding: [4, 0, 2, 0],
      legend: { show: false },
      cursor: { show: false },
      scales: { x: { time: false }, y: { range: (_u, _min, max) => [0, Math.max(1, max) * 1.1] } },
      axes: [{ show: false }, { show: false }],
      series: [{}, { stroke: accent, width: 2, fill: (u: uPlot) => gradient(u, accent, 0.25), points: { show: false } },
        ...(last >= 0 ? [{ stroke: accent, width: 1.5, dash: [3, 3], fill: (u: uPlot) => gradient(u, accent, 0.1), points: { show: false } }] : [])],
    }
  }, data, [values.length, height, last])
  return <div class="spark" style={{ height: height + 'px' }} aria-hidden="true" data-partial={partial ? 'true' : undefined}><div ref={el} /></div>
}
