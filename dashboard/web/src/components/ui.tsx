// Small building blocks shared by the screens.
import type { ComponentChildren } from 'preact'
import { useEffect, useRef, useState } from 'preact/hooks'
import { num } from '../format'

export function Card(props: { title?: ComponentChildren; actions?: ComponentChildren; class?: string; children?: ComponentChildren; id?: string }) {
  return (
    <section class={'card ' + (props.class || '')} id={props.id}>
      {(props.title || props.actions) && (
        <header class="card-head">
          {props.title && <h2>{props.title}</h2>}
          {props.actions && <div class="card-actions">{props.actions}</div>}
        </header>
      )}
      {props.children}
    </section>
  )
}

export function Spinner(props: { label?: string }) {
  return <div class="loading" role="status"><span class="spinner" aria-hidden="true" />{props.label || 'Loading…'}</div>
}

export function Notice(props: { kind?: 'error' | 'info' | 'warn'; children?: ComponentChildren }) {
  return <div class={'notice ' + (props.kind || 'info')} role={props.kind === 'error' ? 'alert' : undefined}>{props.children}</div>
}

/** Warnings shows what an answer's meta.warnings say it had to do differently (for example
 * report in UTC because the database does not know the site's time zone). */
export function Warnings(props: { warnings?: string[] }) {
  if (!props.warnings?.length) return null
  return <>{props.warnings.map(w => <Notice kind="warn" key={w}><span class="answer-warning">{w}</span></Notice>)}</>
}

/** Segmented is a small group of mutually exclusive choices (tabs of a panel, ranges). */
export function Segmented<T extends string>(props: { value: T; options: [T, string][]; onChange: (v: T) => void; label: string; small?: boolean }) {
  return (
    <div class={'segmented' + (props.small ? ' small' : '')} role="tablist" aria-label={props.label}>
      {props.options.map(([v, text]) => (
        <button type="button" role="tab" aria-selected={v === props.value} class={v === props.value ? 'on' : ''} onClick={() => props.onChange(v)}>{text}</button>
      ))}
    </div>
  )
}

export interface Row { key: string; label: ComponentChildren; n: number; title?: string; extra?: ComponentChildren }

/**
 * BarList is a ranked list with proportional bars. With flash, rows whose number changed
 * since the last render are highlighted briefly (live lists); the list always has `slots` rows of fixed height, so live updates
 * never move the page.
 */
export function BarList(props: { rows: Row[]; slots?: number; onPick?: (key: string) => void; empty?: string; max?: number; fmt?: (n: number) => string; flash?: boolean }) {
  const { rows, slots = rows.length, onPick, fmt = num, flash: highlight = false } = props
  const prev = useRef(new Map<string, { n: number; gen: number }>())
  const mounted = useRef(false)
  const max = props.max ?? Math.max(1, ...rows.map(r => r.n))
  const gens = rows.map(r => {
    const p = prev.current.get(r.key)
    const changed = highlight && mounted.current && (!p || p.n !== r.n)
    const gen = (p?.gen || 0) + (changed ? 1 : 0)
    return gen
  })
  useEffect(() => {
    const next = new Map<string, { n: number; gen: number }>()
    rows.forEach((r, i) => next.set(r.key, { n: r.n, gen: gens[i] }))
    prev.current = next
    mounted.current = true
  })
  const shown = rows.slice(0, slots)
  const fillers = Math.max(0, slots - shown.length)
  return (
    <ol class="barlist" style={{ '--rows': String(slots) }}>
      {shown.length === 0 && <li class="barlist-empty">{props.empty || 'No data yet'}</li>}
      {shown.map((r, i) => {
        // The class alternates at every change, which restarts the highlight animation.
        const flash = gens[i] > 0 ? ` flash-${gens[i] % 2}` : ''
        const body = (
          <>
            <span class="bar" style={{ width: `${Math.max(0.5, (r.n / max) * 100)}%` }} />
            <span class="bar-label" title={r.title}>{r.label}</span>
            {r.extra}
            <span class="bar-n num" data-value={r.n}>{fmt(r.n)}</span>
          </>
        )
        return (
          <li key={r.key} class={'barrow' + flash}>
            {onPick ? <button type="button" class="barrow-btn" onClick={() => onPick(r.key)} title={`Filter by ${r.title || r.key}`}>{body}</button> : <div class="barrow-btn">{body}</div>}
          </li>
        )
      })}
      {shown.length > 0 && Array.from({ length: fillers }, (_, i) => <li key={'_' + i} class="barrow filler" aria-hidden="true" />)}
    </ol>
  )
}

/** CopyField shows a value with a button that copies it. */
export function CopyField(props: { value: string; label: string; multiline?: boolean; secret?: boolean }) {
  const [copied, setCopied] = useState(false)
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(props.value)
    } catch {
      const t = document.createElement('textarea')
      t.value = props.value
      document.body.append(t)
      t.select()
      document.execCommand('copy')
      t.remove()
    }
    setCopied(true)
    setTimeout(() => setCopied(false), 1600)
  }
  return (
    <div class={'copy' + (props.multiline ? ' multi' : '')}>
      {props.multiline ? <pre aria-label={props.label}><code>{props.value}</code></pre> : <code class="copy-value" aria-label={props.label}>{props.value}</code>}
      <button type="button" class="btn small" onClick={copy} aria-label={`Copy ${props.label}`}>{copied ? 'Copied' : 'Copy'}</button>
    </div>
  )
}

/** useAsync runs load when deps change and keeps its result, error and loading state. */
export function useAsync<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): { data: T | undefined; error: Error | null; loading: boolean; reload: () => void } {
  const [state, setState] = useState<{ data: T | undefined; error: Error | null; loading: boolean }>({ data: undefined, error: null, loading: true })
  const [tick, setTick] = useState(0)
  useEffect(() => {
    const ac = new AbortController()
    setState(s => ({ ...s, loading: true, error: null }))
    load(ac.signal).then(
      data => { if (!ac.signal.aborted) setState({ data, error: null, loading: false }) },
      error => { if (!ac.signal.aborted) setState(s => ({ data: s.data, error, loading: false })) },
    )
    return () => ac.abort()
  }, [...deps, tick])
  return { ...state, reload: () => setTick(t => t + 1) }
}

/** Change shows a percent change (or points for rates), green when better. */
export function Change(props: { value: number | null | undefined; points?: boolean; lowerIsBetter?: boolean }) {
  const v = props.value
  if (v == null) return <span class="change flat">–</span>
  const good = props.lowerIsBetter ? v < 0 : v > 0
  const cls = v === 0 ? 'flat' : good ? 'up' : 'down'
  const arrow = v > 0 ? '↑' : v < 0 ? '↓' : ''
  return <span class={'change ' + cls}>{arrow}{Math.abs(Math.round(v * 10) / 10)}{props.points ? ' pt' : '%'}</span>
}

/** OBJECT_URL_TTL_MS is how long a saved file's object URL lives: long enough for the browser to read it. */
const OBJECT_URL_TTL_MS = 60_000

/**
 * saveFile hands a file made in the page to the browser's downloads: an object URL and a
 * click on a link with download=. A download is not a load, so the page's CSP (which allows
 * no blob: source) does not stop it.
 */
export function saveFile(blob: Blob, filename: string) {
  const url = URL.createObjectURL(blob)
  const a = document.createElement('a')
  a.href = url
  a.download = filename
  a.style.display = 'none'
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), OBJECT_URL_TTL_MS)
}

/**
 * DownloadButton is a small header button with a download icon and a short visible text;
 * label is its accessible name. While busy it shows a spinner and ignores clicks, but stays
 * focusable (aria-disabled rather than disabled), so keyboard focus is not lost.
 */
export function DownloadButton(props: { label: string; text: string; busy: boolean; onClick: () => void }) {
  return (
    <button type="button" class="btn small ghost download-btn" aria-label={props.label} title={props.label}
      aria-disabled={props.busy ? 'true' : undefined} aria-busy={props.busy ? 'true' : undefined}
      onClick={() => { if (!props.busy) props.onClick() }}>
      {props.busy ? <span class="spinner" aria-hidden="true" />
        : <svg viewBox="0 0 24 24" width="14" height="14" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true"><path d="M12 4v11M7 10l5 5 5-5M5 20h14" /></svg>}
      {props.text}
    </button>
  )
}
