// The public view of a share link: /share/<site>#<token>. No login; the token (kept in the
// fragment, which browsers never send) authenticates every API call and the live stream,
// and reads only its one site.
import { useEffect } from 'preact/hooks'
import { api, setShareToken } from '../api'
import { Link } from '../router'
import { Logo, ThemeToggle } from '../app'
import { Notice, Spinner, useAsync } from '../components/ui'
import { LiveView } from './live'
import { Report } from './report'

const KEY = 'pulse-share:'

export function ShareView(props: { site: string; tab: string }) {
  let token = decodeURIComponent(location.hash.slice(1))
  try {
    if (token) sessionStorage.setItem(KEY + props.site, token)
    else token = sessionStorage.getItem(KEY + props.site) || ''
  } catch { /* storage blocked: the fragment must stay */ }
  setShareToken(token)
  const site = useAsync(() => token ? api.site(props.site) : Promise.reject(new Error('no token')), [props.site, token])
  useEffect(() => { document.documentElement.classList.add('shared') }, [])
  const tab = props.tab === 'report' ? 'report' : 'live'
  return (
    <div class="app">
      <header class="topbar">
        <div class="topbar-in">
          <Logo />
          {site.data && <span class="site-title"><span class="favicon" aria-hidden="true">{site.data.domain[0]?.toUpperCase()}</span><span class="site-name">{site.data.domain}</span></span>}
          <div class="topbar-right">
            <span class="badge" title="Anyone with this link can see this site's statistics, and nothing else">Shared · read-only</span>
            <ThemeToggle />
          </div>
        </div>
      </header>
      {site.data && (
        <nav class="tabs" aria-label="Site views">
          <div class="tabs-in">
            {[['live', 'Live'], ['report', 'Report']].map(([t, label]) => (
              <Link href={`/share/${props.site}/${t}`} class={'tab' + (t === tab ? ' on' : '')} aria-current={t === tab ? 'page' : undefined}>{label}</Link>
            ))}
          </div>
        </nav>
      )}
      <main class="main" id="main">
        {!token ? <div class="container"><Notice kind="error">This link is incomplete: the part after “#” is missing. Ask for the full share link.</Notice></div>
          : site.error ? <div class="container"><Notice kind="error">This share link is not valid: it was revoked, has expired, or was copied incompletely.</Notice></div>
          : !site.data ? <div class="page-loading"><Spinner /></div>
          : tab === 'live' ? <LiveView site={site.data} token={token} />
          : <Report site={site.data} />}
      </main>
    </div>
  )
}
