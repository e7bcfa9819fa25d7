// Light and dark themes: the system's preference unless the person chose one (kept in
// localStorage); charts read their colours from the CSS variables and redraw on a change.
import { useEffect, useState } from 'preact/hooks'

export type ThemeChoice = 'system' | 'light' | 'dark'
const KEY = 'pulse-theme'
const media = window.matchMedia('(prefers-color-scheme: dark)')
const listeners = new Set<() => void>()

export function choice(): ThemeChoice {
  try {
    const v = localStorage.getItem(KEY)
    if (v === 'light' || v === 'dark') return v
  } catch { /* storage blocked: follow the system */ }
  return 'system'
}

export const effective = (): 'light' | 'dark' => {
  const c = choice()
  return c === 'system' ? (media.matches ? 'dark' : 'light') : c
}

export function applyTheme() {
  document.documentElement.dataset.theme = effective()
  listeners.forEach(f => f())
}

export function setChoice(c: ThemeChoice) {
  try {
    if (c === 'system') localStorage.removeItem(KEY)
    else localStorage.setItem(KEY, c)
  } catch { /* not kept: still applied for this page */ }
  applyTheme()
}

media.addEventListener('change', applyTheme)

/** useTheme re-renders on a theme change and returns the theme in effect. */
export function useTheme(): 'light' | 'dark' {
  const [t, setT] = useState(effective)
  useEffect(() => {
    const f = () => setT(effective())
    listeners.add(f)
    return () => { listeners.delete(f) }
  }, [])
  return t
}

/** useChoice re-renders on a change of the person's choice and returns it. */
export function useChoice(): ThemeChoice {
  const [c, setC] = useState(choice)
  useEffect(() => {
    const f = () => setC(choice())
    listeners.add(f)
    return () => { listeners.delete(f) }
  }, [])
  return c
}

/** cssVar reads a colour of the current theme. */
export const cssVar = (name: string) => getComputedStyle(document.documentElement).getPropertyValue(name).trim()
