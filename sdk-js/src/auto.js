// Automatic captures of the full build: outbound links, file downloads, data-pulse-event
// attributes and engagement (visible time and scroll depth, sent when the page is hidden or left).

/** Links to files with these extensions count as downloads (data-downloads="pdf,zip" replaces the list). */
export const DOWNLOADS = 'pdf,zip,gz,tgz,rar,7z,dmg,exe,msi,pkg,deb,rpm,apk,iso,csv,xlsx?,docx?,pptx?,odt,ods,epub,mp3,mp4,mov,avi,mkv,wav'

/**
 * auto installs the captures in window w and returns the function core runs before each
 * pageview (it sends the engagement of the page being left).
 */
export function auto(w, o, send, on) {
  const doc = w.document, loc = w.location, el = doc.documentElement
  const ext = RegExp('\\.(' + (o.downloads || DOWNLOADS).replace(/,/g, '|') + ')$', 'i')
  let shown = Date.now(), time = 0, depth = 0, url

  const click = e => {
    const t = e.target, a = t.closest && t.closest('a[href]'), tag = t.closest && t.closest('[data-pulse-event]')
    if (tag) {
      const props = {}
      for (const k in tag.dataset) if (/^pulseProp./.test(k)) props[k[9].toLowerCase() + k.slice(10)] = tag.dataset[k]
      send('track', { name: tag.dataset.pulseEvent, props })
    }
    if (!a || !/^http/.test(a.protocol)) return
    if (o.downloads !== false && ext.test(a.pathname)) send('track', { name: 'File Download', props: { url: a.href } })
    else if (o.outbound !== false && a.host != loc.host) send('track', { name: 'Outbound Link', props: { url: a.href } })
  }
  on('click', click, doc)
  on('auxclick', e => e.button == 1 && click(e), doc)

  if (o.engagement === false) return
  const scroll = () => { depth = Math.max(depth, Math.min(100, Math.round(100 * (w.scrollY + w.innerHeight) / el.scrollHeight))) }
  on('scroll', scroll)
  // leave queues the engagement of the visible time since the last one; once hidden, the
  // page counts no time until it is shown again, so a second leave sends nothing.
  const leave = () => {
    scroll()
    if (shown) time += Date.now() - shown
    shown = 0
    if (time > 0 && url) send('track', { name: 'engagement', url, props: { ms: time, scroll: depth } })
    time = depth = 0
  }
  const show = () => shown = shown || Date.now()
  // Browsers fire pagehide and visibilitychange (hidden) in either order when a page is left
  // (Chromium: pagehide first), and a tab switch only the latter: whichever comes first
  // queues the engagement. This pagehide listener runs before core's, registered after it,
  // whose beacon thus carries the engagement. A page restored from the back/forward cache
  // (pageshow, persisted) counts its visible time again.
  on('pagehide', leave)
  on('pageshow', e => e.persisted && doc.visibilityState != 'hidden' && show())
  on('visibilitychange', () => doc.visibilityState == 'hidden' ? leave() : show())
  return () => {
    leave()
    shown = doc.visibilityState == 'hidden' ? 0 : Date.now()
    url = loc.href
  }
}
