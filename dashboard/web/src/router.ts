// A small client-side router: the URL is the state (path, query and, for share links, the
// fragment that carries the token), navigate() changes it, useLocation() re-renders on change.
import { createElement, type ComponentChildren } from 'preact'
import { useEffect, useState } from 'preact/hooks'

export interface Loc { path: string; query: URLSearchParams; hash: string }

const listeners = new Set<() => void>()
const read = (): Loc => ({ path: location.pathname, query: new URLSearchParams(location.search), hash: location.hash })

window.addEventListener('popstate', () => listeners.forEach(f => f()))

/** navigate goes to a URL of the app; replace keeps the history entry (filters, ranges). */
export function navigate(to: string, { replace = false } = {}) {
  // A share link's token lives in the fragment: keep it while moving inside the shared view.
  const keepHash = location.pathname.startsWith('/share/') && to.startsWith('/share/') && !to.includes('#') ? location.hash : ''
  const url = to + keepHash
  if (url === location.pathname + location.search + location.hash) return
  if (replace) history.replaceState(null, '', url)
  else history.pushState(null, '', url)
  listeners.forEach(f => f())
  if (!replace) window.scrollTo(0, 0)
}

export function useLocation(): Loc {
  const [loc, setLoc] = useState(read)
  useEffect(() => {
    const f = () => setLoc(read())
    listeners.add(f)
    return () => { listeners.delete(f) }
  }, [])
  return loc
}

/** withQuery returns path?query with the given parameters changed (null or '' removes one). */
export function withQuery(loc: Loc, changes: Record<string, string | string[] | null>): string {
  const q = new URLSearchParams(loc.query)
  for (const [k, v] of Object.entries(changes)) {
    q.delete(k)
    if (Array.isArray(v)) v.forEach(x => q.append(k, x))
    else if (v) q.set(k, v)
  }
  const s = q.toString()
  return loc.path + (s ? '?' + s : '')
}

/** match returns the parameters of pattern ("/sites/:id/live") in path, or null. */
export function match(pattern: string, path: string): Record<string, string> | null {
  const p = pattern.split('/'), s = path.replace(/\/+$/, '').split('/')
  if (p.length !== s.length) return null
  const out: Record<string, string> = {}
  for (let i = 0; i < p.length; i++) {
    if (p[i].startsWith(':')) out[p[i].slice(1)] = decodeURIComponent(s[i])
    else if (p[i] !== s[i]) return null
  }
  return out
}

/** Link is an <a> that navigates inside the app on a plain click. */
export function Link(props: { href: string; class?: string; children?: ComponentChildren; 'aria-current'?: 'page' | undefined; title?: string; onClick?: () => void }) {
  const { href, onClick, ...rest } = props
  return createElement('a', {
    ...rest,
    href,
    onClick: (e: MouseEvent) => {
      if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return
      e.preventDefault()
      onClick?.()
      navigate(href)
    },
  })
}
