// The tracker: events, the WebSocket transport of docs/protocol.md (v1) and its HTTP fallback.
// FULL (defined by the build) adds what most sites can do without, so that the default
// build, loaded by every visitor of every site, stays within 2 KiB gzipped: hash mode,
// DNT/GPC, excluded paths, cross-tab adoption (queue.js), busy pauses, the retry_after of
// close 4429, the flush when the page is hidden and the automatic captures.
import { VERSION, FRAME_DELAY, CHUNK_EVENTS, CHUNK_BYTES, EVENT_BYTES, CONNECT_TIMEOUT, PING_EVERY, PONG_WAIT, FALLBACK_AFTER, MAX_IN_FLIGHT, OPT_OUT } from './limits.js'
import { backoff, uuid, str, bytes } from './util.js'
import { createQueue } from './queue.js'

export { VERSION, FRAME_DELAY, CHUNK_EVENTS, CHUNK_BYTES, EVENT_BYTES, CONNECT_TIMEOUT, PING_EVERY, PONG_WAIT, FALLBACK_AFTER, MAX_IN_FLIGHT }

/** chunk returns the first queue entries, at most CHUNK_EVENTS events and CHUNK_BYTES bytes (at least one). */
export const chunk = list => {
  let n = 0
  return list.filter((x, i) => i < CHUNK_EVENTS && ((n += bytes(str(x.e))) < CHUNK_BYTES || !i))
}

/**
 * start runs the tracker in window w with options o (see index.d.ts) and returns the API.
 * plug, in the full build, adds automatic captures and returns a function run before each page().
 * Nothing of it throws: every entry point catches and drops its own errors.
 */
export function start(w, o, plug) {
  const nav = w.navigator, loc = w.location, doc = w.document, con = w.console, later = setTimeout, stop = clearTimeout
  const safe = f => (...a) => {
    try { return f(...a) } catch (e) { con.warn('Pulse', e) }
  }
  const on = (t, f, x = w) => x.addEventListener(t, safe(f), true)
  const url = path => (o.host || '').replace(/\/$/, '') + path + '?site=' + o.site
  const postURL = url('/v1/events')
  const q = createQueue(w, 'pulse:' + o.site, uuid())
  const body = list => str(list.map(x => x.e))
  // decline says why the tracker must not track this page, or '' when it may.
  const decline = () => {
    let s
    try { s = w.localStorage[OPT_OUT] } catch (e) {}
    return !o.site ? 'no data-site'
      : s ? 'opted out'
      : !o.local && /^(localhost|127\.|\[::1\]$|$)/.test(loc.hostname) ? 'localhost'
      : nav.webdriver ? 'webdriver'
      // The default build has neither option: it fails closed rather than track against them.
      : !FULL ? (o.dnt || o.exclude ? 'data-dnt and data-exclude need pulse.full.js' : '')
      : o.dnt && (nav.doNotTrack == 1 || nav.globalPrivacyControl) ? 'DNT/GPC'
      : o.exclude && o.exclude.test(loc.pathname) ? 'excluded path'
      : ''
  }
  const auto = o.auto !== false
  // seq is the last frame sent, acked the last acknowledged on this connection; lost counts
  // the connections closed since the last welcome; busy (full build) is the time before
  // which no frame goes.
  let why = decline(), ws, ready, seq = 0, acked, resume, identity, lost = 0, retryT, flushT, deadT, busy, posting, httpOnly, prev, last, before

  // send queues one event (fields of docs/protocol.md); it goes out within FRAME_DELAY ms.
  // The server refuses an event over EVENT_BYTES (docs/protocol.md): such an event is dropped
  // here with a console line, as the server's per-event error would drop it, and never holds
  // the queue.
  const send = (type, e) => why || (bytes(str(e = { id: uuid(), ts: Date.now(), url: loc.href, type, ...e })) > EVENT_BYTES
    ? con.warn('Pulse:', e) : (q.add(e), schedule(FRAME_DELAY)))
  const schedule = ms => { flushT = flushT || later(flush, ms) }
  const write = f => ws.send(str(f))

  // flush sends one frame of the events not yet sent on this connection and, when more wait,
  // looks again after FRAME_DELAY ms: frames are paced under the server's rate limit, a
  // resend included. With MAX_IN_FLIGHT frames unacknowledged it sends nothing: the events
  // wait for an ack, which calls it again, and then go in fuller frames.
  function flush() {
    flushT = 0
    if (FULL && busy > Date.now()) return schedule(FRAME_DELAY) // look again soon: an ack ends busy
    if (!ready) return lost < FALLBACK_AFTER && !httpOnly ? connect() : post()
    const list = q.q.filter(x => !x.s), c = chunk(list)
    if (seq - acked < MAX_IN_FLIGHT) {
      c[0] && write({ type: 'events', seq: ++seq, events: c.map(x => (x.s = seq, x.e)) })
      list[c.length] && schedule(FRAME_DELAY)
    }
  }

  // connect opens the WebSocket when there is something to send or, after a lost connection,
  // on the backoff until a welcome, whether or not anything waits (events go by HTTP meanwhile).
  function connect() {
    if (why || ws || retryT || httpOnly || !(q.q[0] || lost) || !nav.onLine) return // 'online' calls flush
    try {
      ws = new w.WebSocket(url('/v1/ingest').replace(/^http/, 'ws'))
    } catch (e) {
      return httpOnly = 1, post()
    }
    deadT = later(dead, CONNECT_TIMEOUT)
    // Not wrapped in safe: an open socket's send does not throw.
    ws.onopen = () => write({ type: 'hello', v: 1, sdk: 'pulse-js', sdk_version: VERSION, resume, identity })
    ws.onmessage = safe(m => {
      const f = JSON.parse(m.data), t = f.type
      stop(deadT)
      if (t == 'welcome') {
        ready = 1
        lost = 0
        resume = f.resume
        // Frames up to last_seq are stored. Every other unacknowledged event goes again, in
        // new full frames paced by flush, with seq growing on from the last one sent (from 1
        // in a new session); the server stores an event once by its id, however it is framed.
        q.ack(f.last_seq)
        acked = seq = f.resumed ? seq : 0
        q.q.map(x => x.s = 0)
        flush()
      }
      if (t == 'ack') q.ack(acked = f.seq), schedule(FRAME_DELAY), FULL && (busy = 0)
      if (FULL && t == 'busy') busy = Date.now() + f.retry_after_ms
    })
    ws.onclose = safe(closed)
  }

  // dead closes a connection that stopped answering and handles it as lost.
  function dead() {
    if (ws) ws.onclose = 0, ws.close(), closed({ code: 4010 })
  }

  function closed(c) {
    const code = c.code
    stop(deadT)
    ws = ready = 0
    if (FULL) busy = 0
    if (code == 4001) identity = void 0 // refused identity token: go on without it
    if (code > 4001 && code < 4004) httpOnly = 1 // protocol error, unsupported version
    retryT = later(() => { retryT = 0; connect() }, FULL && code == 4429 ? 1e3 * c.reason.split('=')[1] : backoff(lost++))
    flush()
  }

  // post sends queued events by POST /v1/events; they leave the queue when the server answers 2xx or 400.
  function post() {
    const list = chunk(q.q)
    const done = r => {
      posting = 0
      if (r.ok || r.status == 400) q.drop(list), schedule(0)
    }
    if (posting || !list[0]) return // offline, fetch fails at once
    posting = 1
    w.fetch(postURL, { method: 'POST', body: body(list), keepalive: true }).then(done, done)
  }

  // page records a pageview of the current URL; the referrer of a later SPA pageview is the previous page.
  function page() {
    FULL && before && before()
    send('page', { referrer: prev || doc.referrer || void 0, title: doc.title })
    last = key()
    prev = loc.href
  }
  const key = () => FULL && o.hash ? loc.pathname + loc.hash : loc.pathname
  const spa = safe(() => key() != last && auto && page())

  const api = {
    track: (name, props) => send('track', { name, props }),
    page,
    identify: (userId, traits, opts) => {
      // hello carries the identity token: reconnect, resuming the session.
      if (opts && opts.token != identity) identity = opts.token, dead()
      send('identify', { props: { userId, ...traits } })
    },
    optOut: () => {
      why = 'opted out'
      q.drop(q.q)
      dead()
      w.localStorage[OPT_OUT] = 1
    },
    optIn: () => {
      delete w.localStorage[OPT_OUT]
      why = decline()
    },
  }
  for (const k in api) api[k] = safe(api[k])
  if (why) return con.info('Pulse: not tracking: ' + why), api

  // before runs before each pageview (the full build's engagement of the page being left).
  if (FULL && plug) before = plug(w, o, send, on)
  // Single-page apps: a pageview whenever the path (and in the full build with o.hash the hash) changes.
  const h = w.history
  for (const m of ['pushState', 'replaceState']) {
    const f = h[m]
    h[m] = (...a) => (a = f.apply(h, a), spa(), a)
  }
  on('popstate', spa)
  FULL && o.hash && on('hashchange', spa)
  on('online', () => (retryT = stop(retryT), connect(), flush()))
  // Full build: the engagement event queued when the page is hidden (by plug's listener,
  // registered before this one) leaves at once.
  FULL && on('visibilitychange', () => doc.visibilityState == 'hidden' && flush())
  // Leaving: unacknowledged events go by sendBeacon and stay queued (the full build releases
  // them to the next page of the origin) until an ack proves them stored.
  on('pagehide', () => {
    const c = chunk(q.q)
    c[0] && nav.sendBeacon(postURL, body(c))
    FULL && q.sync(0)
  })
  setInterval(safe(() => ready && (write({ type: 'ping' }), deadT = later(dead, PONG_WAIT))), PING_EVERY)
  q.sync()
  auto && page()
  return api
}
