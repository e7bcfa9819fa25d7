// The app: routes, the signed-in shell (header, site switcher, tabs) and the public views.
import type { ComponentChildren } from 'preact'
import { useEffect, useRef, useState } from 'preact/hooks'
import { api, onUnauthorized, type Site } from './api'
import { Link, match, navigate, useLocation } from './router'
import { clearSession, canAdmin, loadSession, sessionFailure, useSession } from './session'
import { setChoice, type ThemeChoice, useChoice } from './theme'
import { Notice, Spinner } from './components/ui'
import { Login, AcceptInvite } from './pages/login'
import { Sites } from './pages/sites'
import { LiveView } from './pages/live'
import { Report } from './pages/report'
import { Funnels } from './pages/funnels'
import { Retention } from './pages/retention'
import { SiteSettings } from './pages/site-settings'
import { OrgSettings } from './pages/org-settings'
import { ShareView } from './pages/share'

onUnauthorized(() => {
  clearSession()
  const here = location.pathname + location.search
  navigate('/login' + (here !== '/' ? '?next=' + encodeURIComponent(here) : ''), { replace: true })
})

export function App() {
  const loc = useLocation()
  const p = loc.path
  if (p === '/login') return <Login />
  if (p === '/invite') return <AcceptInvite />
  let m = match('/share/:site', p) || match('/share/:site/:tab', p)
  if (m) return <ShareView site={m.site} tab={m.tab || 'live'} />
  return <Shell />
}

/** Logo is Pulse's mark and name. */
export function Logo(props: { href?: string }) {
  const mark = (
    <svg viewBox="0 0 32 32" width="28" height="28" aria-hidden="true">
      <rect width="32" height="32" rx="8" fill="var(--accent)" />
      <path d="M5 17h5l3-7 5 13 3-6h6" fill="none" stroke="#fff" stroke-width="2.6" stroke-linecap="round" stroke-linejoin="round" />
    </svg>
  )
  return props.href ? <Link href={props.href} class="logo">{mark}<span>Pulse</span></Link> : <span class="logo">{mark}<span>Pulse</span></span>
}

const SITE_TABS: [string, string][] = [['live', 'Live'], ['report', 'Report'], ['funnels', 'Funnels'], ['retention', 'Retention'], ['settings', 'Settings']]

function Shell() {
  const loc = useLocation()
  const session = useSession()
  const siteMatch = match('/sites/:site/:tab', loc.path) || match('/sites/:site', loc.path)
  const orgMatch = match('/orgs/:org/settings', loc.path)
  if (!session) {
    const failed = sessionFailure()
    return (
      <div class="page-loading">
        {failed
          ? <div class="container"><Notice kind="error">{failed.message}</Notice><button class="btn" onClick={() => loadSession(true).catch(() => {})}>Try again</button></div>
          : <Spinner />}
      </div>
    )
  }
  const site = siteMatch ? session.sites.find(s => s.id === siteMatch.site) : undefined
  let body: ComponentChildren
  let tab = siteMatch?.tab || 'live'
  if (loc.path === '/' || loc.path === '/sites') body = <Sites />
  else if (siteMatch && !site) body = <NotFound what="site" />
  else if (site) {
    if (!siteMatch!.tab) return <Redirect to={`/sites/${site.id}/live`} />
    body = tab === 'live' ? <LiveView site={site} />
      : tab === 'report' ? <Report site={site} />
      : tab === 'funnels' ? <Funnels site={site} />
      : tab === 'retention' ? <Retention site={site} />
      : tab === 'settings' ? <SiteSettings site={site} />
      : <NotFound what="page" />
  } else if (orgMatch) body = <OrgSettings orgId={orgMatch.org} />
  else body = <NotFound what="page" />
  return (
    <div class="app">
      <Header site={site} />
      {site && <SiteTabs site={site} tab={tab} admin={canAdmin(session, site.org_id)} />}
      <main class="main" id="main">{body}</main>
    </div>
  )
}

function Header(props: { site?: Site; share?: boolean }) {
  const session = useSession()
  return (
    <header class="topbar">
      <div class="topbar-in">
        <a class="skip" href="#main">Skip to content</a>
        <Logo href="/" />
        {props.site && session && <SitePicker site={props.site} sites={session.sites} />}
        <div class="topbar-right">
          <ThemeToggle />
          {session?.me.user && <UserMenu />}
        </div>
      </div>
    </header>
  )
}

function SiteTabs(props: { site: Site; tab: string; admin: boolean }) {
  const tabs = SITE_TABS.filter(([t]) => t !== 'settings' || props.admin)
  return (
    <nav class="tabs" aria-label="Site views">
      <div class="tabs-in">
        {tabs.map(([t, label]) => (
          <Link href={`/sites/${props.site.id}/${t}`} class={'tab' + (t === props.tab ? ' on' : '')} aria-current={t === props.tab ? 'page' : undefined}>{label}</Link>
        ))}
      </div>
    </nav>
  )
}

/** Menu is a button that opens a small list; Escape or a click outside closes it. */
function Menu(props: { label: ComponentChildren; aria: string; class?: string; children: (close: () => void) => ComponentChildren }) {
  const [open, setOpen] = useState(false)
  const ref = useRef<HTMLDivElement>(null)
  useEffect(() => {
    if (!open) return
    const away = (e: Event) => { if (!ref.current?.contains(e.target as Node)) setOpen(false) }
    const esc = (e: KeyboardEvent) => { if (e.key === 'Escape') { setOpen(false); (ref.current?.querySelector('button') as HTMLElement)?.focus() } }
    document.addEventListener('mousedown', away)
    document.addEventListener('keydown', esc)
    ref.current?.querySelector<HTMLElement>('.menu-list a, .menu-list button')?.focus()
    return () => { document.removeEventListener('mousedown', away); document.removeEventListener('keydown', esc) }
  }, [open])
  return (
    <div class={'menu ' + (props.class || '')} ref={ref}>
      <button type="button" class="menu-btn" aria-haspopup="true" aria-expanded={open} aria-label={props.aria} onClick={() => setOpen(!open)}>{props.label}</button>
      {open && <div class="menu-list" role="menu">{props.children(() => setOpen(false))}</div>}
    </div>
  )
}

function SitePicker(props: { site: Site; sites: Site[] }) {
  const loc = useLocation()
  const tab = match('/sites/:site/:tab', loc.path)?.tab || 'live'
  return (
    <Menu aria="Switch site" class="site-picker" label={<><span class="favicon" aria-hidden="true">{props.site.domain[0]?.toUpperCase()}</span><span class="site-name">{props.site.domain}</span><span class="caret" aria-hidden="true">▾</span></>}>
      {close => <>
        {props.sites.map(s => <Link href={`/sites/${s.id}/${tab}`} onClick={close} class={s.id === props.site.id ? 'on' : ''}>{s.domain}</Link>)}
        <hr />
        <Link href="/" onClick={close}>All sites</Link>
      </>}
    </Menu>
  )
}

function UserMenu() {
  const session = useSession()
  const user = session?.me.user
  if (!user) return null
  const logout = async () => {
    try { await api.logout() } catch { /* the cookie is cleared either way */ }
    clearSession()
    navigate('/login')
  }
  const initials = (user.name || user.email).split(/[\s@.]+/).filter(Boolean).slice(0, 2).map(s => s[0].toUpperCase()).join('')
  return (
    <Menu aria="Account" class="user-menu" label={<span class="avatar" aria-hidden="true">{initials}</span>}>
      {close => <>
        <div class="menu-who"><strong>{user.name || 'Signed in'}</strong><span>{user.email}</span></div>
        <hr />
        <Link href="/" onClick={close}>Sites</Link>
        {session!.orgs.map(o => <Link href={`/orgs/${o.id}/settings`} onClick={close}>{session!.orgs.length > 1 ? `${o.name} settings` : 'Organization settings'}</Link>)}
        <hr />
        <button type="button" onClick={logout}>Log out</button>
      </>}
    </Menu>
  )
}

export function ThemeToggle() {
  const c = useChoice()
  const next: Record<ThemeChoice, ThemeChoice> = { system: 'light', light: 'dark', dark: 'system' }
  const names: Record<ThemeChoice, string> = { system: 'System theme', light: 'Light theme', dark: 'Dark theme' }
  const icon = c === 'light'
    ? <path d="M12 4v2m0 12v2M4 12h2m12 0h2M6.3 6.3l1.4 1.4m8.6 8.6 1.4 1.4M6.3 17.7l1.4-1.4m8.6-8.6 1.4-1.4M12 8a4 4 0 1 0 0 8 4 4 0 0 0 0-8Z" />
    : c === 'dark' ? <path d="M20 14.5A8 8 0 0 1 9.5 4a8 8 0 1 0 10.5 10.5Z" />
    : <path d="M4 5h16v11H4zM9 20h6M12 16v4" />
  return (
    <button type="button" class="icon-btn" onClick={() => setChoice(next[c])} title={`${names[c]} (click for ${names[next[c]].toLowerCase()})`} aria-label={`${names[c]}; switch to ${names[next[c]].toLowerCase()}`}>
      <svg viewBox="0 0 24 24" width="18" height="18" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">{icon}</svg>
    </button>
  )
}

function Redirect(props: { to: string }) {
  useEffect(() => navigate(props.to, { replace: true }), [props.to])
  return null
}

export function NotFound(props: { what: string }) {
  return (
    <div class="empty-page">
      <h1>{props.what === 'site' ? 'Site not found' : 'Page not found'}</h1>
      <p>{props.what === 'site' ? 'It does not exist, or you are not a member of its organization.' : 'There is nothing at this address.'}</p>
      <Link href="/" class="btn">Back to your sites</Link>
    </div>
  )
}
