// The tracker: events, the WebSocket transport of docs/protocol.md (v1) and its HTTP fallback.
import { backoff, uuid, decline, OPT_OUT } from './util.js'
import { createQueue } from './queue.js'

export const VERSION = '1.0.0'
/** Events wait FRAME_DELAY ms to share a frame: at most 40 frames/s, under the server's 50/s. */
export const FRAME_DELAY = 25
/** A frame, POST body or beacon holds at most CHUNK_EVENTS events and about CHUNK_BYTES bytes (server: 500 and 64 KiB; keepalive and sendBeacon: 64 KiB). */
export const CHUNK_EVENTS = 100
export const CHUNK_BYTES = 6e4
/** Without a welcome within CONNECT_TIMEOUT ms of connecting, the attempt has failed. */
export const CONNECT_TIMEOUT = 5000
/** A ping is sent every PING_EVERY ms; without any frame PONG_WAIT ms after it the connection is dead. */
export const PING_EVERY = 15000
export const PONG_WAIT = 10000
/** After FALLBACK_AFTER failed connection attempts in a row, events go by POST /v1/events. */
export const FALLBACK_AFTER = 2

const str = JSON.stringify

/** chunk returns the first queue entries, at most CHUNK_EVENTS events and CHUNK_BYTES bytes (at least one). */
export const chunk = list => {
  let n = 0
  return list.filter((x, i) => i < CHUNK_EVENTS && ((n += str(x.e).length) < CHUNK_BYTES || !i))
}

/**
 * start runs the tracker in window w with options o (see index.d.ts) and returns the API.
 * plug, in the full build, adds automatic captures and returns a function run before each page().
 * Nothing of it throws: every entry point catches and drops its own errors.
 */
export function start(w, o, plug) {
  const nav = w.navigator, loc = w.location, doc = w.document, con = w.console, later = setTimeout
  const safe = f => function () {
    try { return f.apply(this, arguments) } catch (e) { con.warn('Pulse', e) }
  }
  const on = (t, f, x = w) => x.addEventListener(t, safe(f), true)
  const host = (o.host || '').replace(/\/$/, '')
  const postURL = host + '/v1/events?site=' + o.site
  const q = createQueue(w, 'pulse:' + o.site, uuid())
  let why = decline(w, o), ws, ready, seq = 0, resume, identity, attempt = 0, fails = 0, retryT, flushT, deadT, busyUntil = 0, posting, httpOnly, prev, last, before

  // send queues one event (fields of docs/protocol.md); it goes out within FRAME_DELAY ms.
  const send = e => {
    if (why) return
    q.add({ id: uuid(), ts: Date.now(), url: loc.href, ...e })
    schedule(FRAME_DELAY)
  }
  const schedule = ms => { flushT = flushT || later(flush, ms) }
  const write = f => ws.send(str(f))
  const frame = (s, list) => write({ type: 'events', seq: s, events: list.map(x => (x.s = s, x.e)) })

  function flush() {
    flushT = 0
    if (!ready) return fails >= FALLBACK_AFTER || httpOnly ? post() : connect()
    const wait = busyUntil - Date.now(), list = q.q.filter(x => !x.s), c = chunk(list)
    if (wait > 0) return schedule(wait)
    c[0] && frame(++seq, c)
    list[c.length] && schedule(FRAME_DELAY)
  }

  function connect() {
    if (ws || retryT || why || httpOnly || !q.q[0] || !nav.onLine) return // 'online' calls flush
    try {
      ws = new w.WebSocket(host.replace(/^http/, 'ws') + '/v1/ingest?site=' + o.site)
    } catch (e) {
      return httpOnly = 1, post()
    }
    deadT = later(dead, CONNECT_TIMEOUT)
    ws.onopen = safe(() => write({ type: 'hello', v: 1, sdk: 'pulse-js', sdk_version: VERSION, resume, identity }))
    ws.onmessage = safe(m => {
      const f = JSON.parse(m.data), t = f.type, frames = {}
      clearTimeout(deadT)
      if (t == 'welcome') {
        ready = 1
        attempt = fails = 0
        resume = f.resume
        // Frames up to last_seq are stored; the others are resent with their seq. In a new
        // session all unacknowledged events go again in new frames.
        q.ack(f.last_seq)
        for (const x of q.q) f.resumed ? x.s && (frames[x.s] ||= []).push(x) : x.s = 0
        for (const s in frames) frame(+s, frames[s])
        f.resumed || (seq = 0)
        flush()
      }
      if (t == 'ack') q.ack(f.seq), busyUntil && (busyUntil = flushT = clearTimeout(flushT), flush())
      if (t == 'busy') busyUntil = Date.now() + f.retry_after_ms
    })
    ws.onclose = safe(c => closed(c.code, c.reason))
  }

  // dead closes a connection that stopped answering and handles it as lost.
  function dead() {
    if (ws) ws.onclose = 0, ws.close(), closed(4010)
  }

  function closed(code, reason) {
    clearTimeout(deadT)
    ws = 0
    ready || fails++
    ready = 0
    if (code == 4001) identity = void 0 // refused identity token: go on without it
    if (code == 4002 || code == 4003) httpOnly = 1
    if (fails >= FALLBACK_AFTER || httpOnly) post()
    retryT = later(() => { retryT = 0; connect() }, code == 4429 ? 1e3 * reason.split('=')[1] : backoff(attempt++))
  }

  // post sends queued events by POST /v1/events; they leave the queue when the server answers 2xx or 400.
  function post() {
    const list = chunk(q.q)
    if (posting || why || !nav.onLine || !list[0]) return
    posting = 1
    w.fetch(postURL, { method: 'POST', body: str(list.map(x => x.e)), keepalive: true }).then(r => {
      posting = 0
      if (r.ok || r.status == 400) q.drop(list), schedule(0)
    }, () => { posting = 0 })
  }

  // page records a pageview of the current URL; the referrer of a later SPA pageview is the previous page.
  function page() {
    before && before()
    send({ type: 'page', referrer: prev || doc.referrer || undefined, title: doc.title })
    last = key()
    prev = loc.href
  }
  const key = () => loc.pathname + (o.hash ? loc.hash : '')
  const spa = () => key() != last && o.auto !== false && page()

  const api = {
    track: safe((name, props) => send({ type: 'track', name, props })),
    page: safe(page),
    identify: safe((userId, traits, opts) => {
      // hello carries the identity token: reconnect, resuming the session.
      if (opts && opts.token != identity) identity = opts.token, dead()
      send({ type: 'identify', props: { userId, ...traits } })
    }),
    optOut: safe(() => {
      why = 'opted out'
      q.q.length = 0
      q.sync()
      dead()
      w.localStorage.setItem(OPT_OUT, 1)
    }),
    optIn: safe(() => {
      w.localStorage.removeItem(OPT_OUT)
      why = decline(w, o)
    }),
  }
  if (why) {
    con.info('Pulse: not tracking: ' + why)
    return api
  }

  if (plug) before = plug(w, o, send, on)
  // Single-page apps: a pageview whenever the path (and with o.hash the hash) changes.
  for (const m of ['pushState', 'replaceState']) {
    const f = w.history[m]
    w.history[m] = function () {
      const r = f.apply(this, arguments)
      safe(spa)()
      return r
    }
  }
  on('popstate', spa)
  o.hash && on('hashchange', spa)
  on('online', () => (retryT = clearTimeout(retryT), connect(), flush()))
  on('visibilitychange', () => doc.visibilityState == 'hidden' && flush())
  // Leaving: unacknowledged events go by sendBeacon and stay queued, released to the next
  // page of the origin, until an ack proves them stored.
  on('pagehide', () => {
    const c = chunk(q.q)
    c[0] && nav.sendBeacon(postURL, str(c.map(x => x.e)))
    q.sync(0)
  })
  setInterval(safe(() => ready && (write({ type: 'ping' }), deadT = later(dead, PONG_WAIT))), PING_EVERY)
  q.sync()
  o.auto !== false && page()
  return api
}
