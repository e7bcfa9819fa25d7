// A happy-dom window with a scripted WebSocket, fetch and sendBeacon, for the tracker's unit
// tests, and the tracker's sources as the default or the full build compiles them.
import { Window } from 'happy-dom'
import { mock } from 'node:test'
import { buildSync } from 'esbuild'
import { fileURLToPath } from 'node:url'

/**
 * load returns the exports of src/ (core, queue, util, auto) bundled unminified with FULL
 * defined as the build defines it: load(false) is the code of pulse.js, load(true) that of
 * pulse.full.js.
 */
export async function load(full) {
  const out = buildSync({
    stdin: {
      contents: "export * from './core.js'; export * from './queue.js'; export * from './util.js'; export * from './auto.js'",
      resolveDir: fileURLToPath(new URL('../../src', import.meta.url)),
    },
    bundle: true, format: 'esm', write: false, define: { FULL: String(full) }, logLevel: 'warning',
  })
  return import('data:text/javascript;base64,' + Buffer.from(out.outputFiles[0].contents).toString('base64'))
}

/**
 * page returns a window at url whose WebSocket, fetch and sendBeacon record what the tracker
 * sends: sockets (FakeSocket), posts and beacons ({url, events}). Timers and Date are mocked
 * (node:test mock.timers); call t.after(w.close) through the returned close().
 */
export function page(url = 'https://shop.example/pricing', { webdriver = false, storage = true } = {}) {
  const w = new Window({ url })
  const rec = { sockets: [], posts: [], beacons: [], logs: [], fetchStatus: 202 }
  Object.defineProperty(w.navigator, 'webdriver', { value: webdriver, configurable: true })
  let online = true
  Object.defineProperty(w.navigator, 'onLine', { get: () => online, configurable: true })
  rec.setOnline = v => { online = v; w.dispatchEvent(new w.Event(v ? 'online' : 'offline')) }
  if (!storage) Object.defineProperty(w, 'localStorage', { get() { throw new Error('SecurityError: storage disabled') } })
  w.WebSocket = class FakeSocket {
    constructor(u) {
      if (rec.wsThrows) throw new Error('blocked by CSP')
      this.url = u
      this.sent = []
      this.at = [] // the (mocked) time of each sent frame
      rec.sockets.push(this)
    }
    send(d) { this.sent.push(JSON.parse(d)); this.at.push(Date.now()) }
    close(code = 1000) { this.closedWith = code }
    // server side of the test:
    open() { this.onopen && this.onopen() }
    recv(f) { this.onmessage && this.onmessage({ data: JSON.stringify(f) }) }
    drop(code = 1006, reason = '') { this.onclose && this.onclose({ code, reason }) }
    welcome(extra = {}) { this.open(); this.recv({ type: 'welcome', v: 1, session: 's_1', resume: 'r1', resumed: false, last_seq: 0, ...extra }) }
    frames() { return this.sent.filter(f => f.type == 'events') }
  }
  w.fetch = async (u, init) => {
    rec.posts.push({ url: u, init, events: JSON.parse(init.body) })
    if (rec.fetchStatus == 0) throw new TypeError('network error')
    return { ok: rec.fetchStatus < 300, status: rec.fetchStatus }
  }
  w.navigator.sendBeacon = (u, body) => { rec.beacons.push({ url: u, events: JSON.parse(body) }); return true }
  w.console.info = m => rec.logs.push(m)
  w.console.warn = (...a) => rec.logs.push(a.join(' '))
  rec.w = w
  rec.close = () => w.happyDOM.close()
  return rec
}

/** timers mocks setTimeout, setInterval and Date from t's start; returns tick(ms). */
export function timers(now = Date.parse('2026-01-05T10:00:00Z')) {
  mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now })
  return ms => mock.timers.tick(ms)
}

/**
 * bucket replays frames sent at the times `at` (ms) through the server's per-connection token
 * bucket (ingest/limits.go: DefaultFramesPerSecond 50, DefaultFrameBurst 100, every frame
 * counts) and returns the index of the first frame it would close with 4029, or -1.
 */
export function bucket(at, perSecond = 50, burst = 100) {
  let tokens = burst, t0 = at[0]
  for (let i = 0; i < at.length; i++) {
    tokens = Math.min(burst, tokens + (at[i] - t0) * perSecond / 1000)
    t0 = at[i]
    if (tokens < 1) return i
    tokens--
  }
  return -1
}

/** settle lets resolved promises (fetch answers) run. */
export const settle = () => new Promise(r => setImmediate(r))

export const restore = () => mock.timers.reset()
