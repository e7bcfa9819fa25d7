// The tracker: events, the WebSocket transport of docs/protocol.md (v1) and its HTTP fallback.
import { backoff, uuid, decline, OPT_OUT } from './util.js'
import { createQueue } from './queue.js'

export const VERSION = '1.0.0'
/** Events wait FRAME_DELAY ms to share a frame: at most 40 frames/s, under the server's 50/s. */
export const FRAME_DELAY = 25
/** A frame holds at most FRAME_EVENTS events and about FRAME_BYTES bytes (server: 500 and 64 KiB). */
export const FRAME_EVENTS = 100
export const FRAME_BYTES = 32768
/** Without a welcome within CONNECT_TIMEOUT ms of connecting, the attempt has failed. */
export const CONNECT_TIMEOUT = 5000
/** A ping is sent every PING_EVERY ms; without any frame PONG_WAIT ms after it the connection is dead. */
export const PING_EVERY = 15000
export const PONG_WAIT = 10000
/** After FALLBACK_AFTER failed connection attempts in a row, events go by POST /v1/events. */
export const FALLBACK_AFTER = 2
/** sendBeacon and fetch keepalive bodies stay under 64 KiB. */
const BODY_BYTES = 6e4

/**
 * start runs the tracker in window w with options o (see index.d.ts) and returns the API.
 * plug, in the full build, adds automatic captures and returns a function run before each page().
 * Nothing of it throws: every entry point catches and drops its own errors.
 */
export function start(w, o, plug) {
  const nav = w.navigator, loc = w.location, doc = w.document, con = w.console
  const on = (t, f, x = w) => x.addEventListener(t, safe(f), true)
  const log = m => con && con.info('Pulse: ' + m)
  const host = (o.host || '').replace(/\/$/, '')
  const site = encodeURIComponent(o.site)
  const postURL = host + '/v1/events?site=' + site
  const q = createQueue(w, 'pulse:' + o.site, uuid())
  let why = o.site ? decline(w, o) : 'no data-site'
  let ws, ready, seq = 0, resume, identity, attempt = 0, fails = 0, retryT, flushT, deadT, busyUntil = 0, posting, wsOff, prev, last, before

  // send queues one event (fields of docs/protocol.md); it goes out within FRAME_DELAY ms.
  const send = e => {
    if (why) return
    q.add(Object.assign({ id: uuid(), ts: Date.now(), url: loc.href }, e))
    schedule(FRAME_DELAY)
  }
  const schedule = ms => { flushT = flushT || setTimeout(flush, ms) }
  const write = f => ws.send(JSON.stringify(f))
  const unsent = () => q.q.filter(x => !x.s)

  function flush() {
    flushT = 0
    if (!ready) return fails >= FALLBACK_AFTER || wsOff ? post() : connect()
    const wait = busyUntil - Date.now()
    if (wait > 0) return schedule(wait)
    let n = 0, bytes = 0, events = []
    for (const x of unsent()) {
      if (n >= FRAME_EVENTS || (bytes += JSON.stringify(x.e).length) > FRAME_BYTES && n) break
      x.s = seq + 1
      events[n++] = x.e
    }
    if (n) {
      write({ type: 'events', seq: ++seq, events })
      if (unsent().length) schedule(FRAME_DELAY)
    }
  }

  function connect() {
    if (ws || retryT || why || wsOff || !q.q.length) return
    if (!nav.onLine) return // the 'online' event calls flush
    try {
      ws = new w.WebSocket(host.replace(/^http/, 'ws') + '/v1/ingest?site=' + site)
    } catch (e) {
      wsOff = 1
      log('WebSocket unavailable, sending by HTTP')
      return post()
    }
    deadT = setTimeout(dead, CONNECT_TIMEOUT)
    ws.onopen = safe(() => write({ type: 'hello', v: 1, sdk: 'pulse-js', sdk_version: VERSION, resume, identity }))
    ws.onmessage = safe(m => {
      const f = JSON.parse(m.data), t = f.type
      clearTimeout(deadT)
      if (t == 'welcome') {
        ready = 1
        attempt = fails = 0
        resume = f.resume
        // Frames up to last_seq are stored; the others are resent with their seq, or,
        // in a new session, all unacknowledged events go again in new frames.
        if (f.resumed) {
          q.remove(f.last_seq)
          const frames = {}
          for (const x of q.q) if (x.s) (frames[x.s] = frames[x.s] || []).push(x.e)
          for (const s in frames) write({ type: 'events', seq: +s, events: frames[s] })
          seq = Math.max(seq, f.last_seq)
        } else {
          q.q.forEach(x => x.s = 0)
          seq = 0
        }
        q.adopt()
        flush()
      } else if (t == 'ack') {
        busyUntil = 0
        q.remove(f.seq)
      } else if (t == 'busy') {
        busyUntil = Date.now() + f.retry_after_ms
      } else if (t == 'error') {
        log('event refused: ' + f.field + ' ' + f.message)
      }
    })
    ws.onclose = safe(c => closed(c.code, c.reason))
  }

  // dead closes a connection that stopped answering and handles it as lost.
  function dead() {
    if (ws) {
      ws.onclose = null
      ws.close()
      closed(4010, '')
    }
  }

  function closed(code, reason) {
    clearTimeout(deadT)
    ws = 0
    if (!ready) fails++
    ready = 0
    let ms = backoff(attempt++)
    if (code == 4001) {
      identity = 0
      log('identity token refused, continuing without it')
    } else if (code == 4002 || code == 4003) {
      wsOff = 1
      log('server refused the protocol (' + code + '), sending by HTTP')
    } else if (code == 4429) {
      ms = 1e3 * (reason.split('retry_after=')[1] || 30)
    }
    if (fails >= FALLBACK_AFTER || wsOff) post()
    if (!wsOff) retryT = setTimeout(() => { retryT = 0; connect() }, ms)
  }

  // post sends queued events by POST /v1/events; they leave the queue once the server answered 2xx or 400.
  function post() {
    if (posting || why || !nav.onLine) return
    const list = [], events = []
    let bytes = 0
    for (const x of q.q) {
      if (list.length >= FRAME_EVENTS || (bytes += JSON.stringify(x.e).length) > BODY_BYTES) break
      list.push(x)
      events.push(x.e)
    }
    if (!list.length) return
    posting = 1
    w.fetch(postURL, { method: 'POST', body: JSON.stringify(events), keepalive: true, credentials: 'omit' }).then(r => {
      posting = 0
      if (r.ok || r.status == 400) {
        q.remove(list)
        if (unsent().length) schedule(0)
      } else if (r.status == 404) {
        why = 'unknown site key ' + o.site
        log(why)
      }
    }, () => { posting = 0 })
  }

  // page records a pageview of the current URL; the referrer of a later SPA pageview is the previous page.
  function page() {
    before && before()
    send({ type: 'page', name: 'pageview', referrer: prev || doc.referrer || undefined, title: doc.title })
    last = key()
    prev = loc.href
  }
  const key = () => loc.pathname + (o.hash ? loc.hash : '')

  function safe(f) {
    return function () {
      try { return f.apply(this, arguments) } catch (e) { con && con.warn('Pulse:', e) }
    }
  }

  const api = {
    track: safe((name, props) => send({ type: 'track', name, props })),
    page: safe(page),
    identify: safe((userId, traits, opts) => {
      const t = opts && opts.token
      if (t && t != identity) {
        identity = t
        // hello carries the identity: reconnect at once, resuming the session.
        if (ws) { ws.onclose = null; ws.close(1000); closed(1000, ''); clearTimeout(retryT); retryT = 0; attempt = 0 }
      }
      send({ type: 'identify', props: Object.assign({ userId }, traits) })
    }),
    optOut: safe(() => {
      w.localStorage.setItem(OPT_OUT, '1')
      q.q.length = 0
      q.sync()
      why = 'opted out'
      ws && ws.close(1000)
      log('opted out on this site')
    }),
    optIn: safe(() => {
      w.localStorage.removeItem(OPT_OUT)
      why = decline(w, o)
      log(why ? 'not tracking: ' + why : 'tracking')
    }),
  }
  if (why) {
    log('not tracking: ' + why)
    return api
  }

  q.adopt()
  if (plug) before = plug(w, o, send, on)
  // Single-page apps: a pageview whenever the path (and with o.hash the hash) changes.
  const spa = () => key() != last && o.auto !== false && page()
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
  on('online', flush)
  on('visibilitychange', () => doc.visibilityState == 'hidden' && flush())
  // Leaving: unacknowledged events go by sendBeacon and stay queued (released to the
  // next page of the origin) until an ack proves them stored.
  on('pagehide', () => {
    let list = [], bytes = 0
    const beacon = () => list.length && nav.sendBeacon(postURL, JSON.stringify(list))
    for (const x of q.q) {
      const b = JSON.stringify(x.e).length
      if (bytes + b > BODY_BYTES) { beacon(); list = []; bytes = 0 }
      list.push(x.e)
      bytes += b
    }
    beacon()
    q.sync(0)
  })
  on('pageshow', e => e.persisted && q.adopt())
  setInterval(safe(() => {
    if (ready) {
      write({ type: 'ping' })
      deadT = setTimeout(dead, PONG_WAIT)
    }
    q.q.length && q.sync()
  }), PING_EVERY)
  o.auto !== false && page()
  return api
}
