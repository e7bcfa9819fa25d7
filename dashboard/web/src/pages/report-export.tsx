// CSV downloads of the report: a card's own query, without its row limit, answered by the
// query API as CSV (docs/query-api.md, "Export (CSV)") and saved as a file.
import type { JSX } from 'preact'
import { useEffect, useRef, useState } from 'preact/hooks'
import { ApiError, isShare, MAX_LIMIT, queryCSV, type QuerySpec } from '../api'
import { exact } from '../format'
import { DownloadButton, Notice, saveFile } from '../components/ui'

/** PLURALS names what a breakdown lists, for the accessible name of its download button. */
export const PLURALS: Record<string, string> = {
  'visit:channel': 'Channels', 'visit:source': 'Sources', 'visit:referrer': 'Referrers',
  'event:page': 'Pages', 'visit:entry_page': 'Entry pages', 'visit:exit_page': 'Exit pages',
  'visit:country': 'Countries', 'visit:region': 'Regions', 'visit:city': 'Cities',
  'visit:device': 'Devices', 'visit:browser': 'Browsers', 'visit:os': 'Operating systems',
  'visit:utm_source': 'UTM sources', 'visit:utm_medium': 'UTM mediums', 'visit:utm_campaign': 'UTM campaigns',
  'event:name': 'Custom events',
}

interface ExportState { key: string; busy: boolean; error?: string; capped?: boolean }

/**
 * useExport downloads the result of spec as CSV. It answers the button for the card's
 * header ("Download WHAT as CSV") and the notice for the card's body: why a download
 * failed, or that the file stopped at the API's row limit. The notice belongs to the query
 * it was made for: a changed range, filter or tab hides it.
 */
export function useExport(spec: QuerySpec, what: string): { button: JSX.Element; notice: JSX.Element | null } {
  const key = JSON.stringify(spec)
  const [state, setState] = useState<ExportState>({ key, busy: false })
  const ac = useRef<AbortController | null>(null)
  useEffect(() => () => ac.current?.abort(), [])
  const run = async () => {
    const c = new AbortController()
    ac.current = c
    setState({ key, busy: true })
    try {
      const file = await queryCSV(spec, c.signal)
      const rows = csvRecords(await file.blob.text()) - 1 // the header
      if (c.signal.aborted) return
      saveFile(file.blob, withSuffix(file.filename, spec.dimensions?.[0] || ''))
      setState({ key, busy: false, capped: rows >= (spec.limit ?? MAX_LIMIT) })
    } catch (e) {
      if (c.signal.aborted) return
      setState({ key, busy: false, error: exportError(e) })
    }
  }
  const label = `Download ${what} as CSV`
  const button = <DownloadButton label={label} text="CSV" busy={state.busy} onClick={run} />
  const shown = state.key === key ? state : null
  const notice = shown?.error ? <Notice kind="error">Could not download {what} as CSV: {shown.error}</Notice>
    : shown?.capped ? <Notice kind="info">The CSV holds the first {exact(spec.limit ?? MAX_LIMIT)} rows, the most one query answers. Narrow the date range or add a filter for the rest.</Notice>
    : null
  return { button, notice }
}

/** exportError says why a download failed, in words a person can act on. */
function exportError(e: unknown): string {
  if (e instanceof ApiError && e.status === 401 && isShare()) return 'this share link is no longer valid: it was revoked or has expired.'
  const msg = e instanceof Error ? e.message : String(e)
  return /[.!?]$/.test(msg) ? msg : msg + '.'
}

/**
 * withSuffix adds the dimension to the API's file name, so that the files of several panels
 * (which the API names alike, after the site and the dates) do not overwrite each other:
 * pulse-example.com-2026-01-01-2026-01-31.csv becomes …-2026-01-31-visit-source.csv.
 */
export function withSuffix(filename: string, dim: string): string {
  const tag = dim.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '')
  if (!tag) return filename
  const dot = filename.toLowerCase().endsWith('.csv') ? filename.length - 4 : filename.length
  return `${filename.slice(0, dot)}-${tag}${filename.slice(dot) || '.csv'}`
}

/** csvRecords counts the records of a CSV text (RFC 4180: a quoted field may hold line breaks). */
export function csvRecords(text: string): number {
  let n = 0, quoted = false, open = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 34) quoted = !quoted // '"'; an escaped "" flips twice
    else if (c === 10 && !quoted) { n++; open = false; continue }
    open = true
  }
  return n + (open ? 1 : 0)
}
