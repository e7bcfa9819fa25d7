// The live stream client (docs/protocol.md, "Live stream"): one WebSocket to /v1/live per
// watched site, a snapshot and then deltas applied in order, and reconnection with backoff
// that the view shows as "Reconnecting…".

export interface Count { key: string; n: number }
export interface Top { '5m': Count[]; '30m': Count[] }
export interface Series { end: number; events: number[]; pageviews: number[] }
export interface FeedItem {
  n: number; time: number; type: string; name?: string; path?: string; source?: string
  channel?: string; country?: string; browser?: string; device?: string
}
export interface Goal { name: string; '5m': number; '30m': number; '60m': number }
export interface LiveState {
  time: number
  online?: { now: number; connections: number; http: number }
  visitors?: { '30m': number }
  rates?: { seconds: Series; minutes: Series }
  pages?: Top; entries?: Top; sources?: Top; channels?: Top; countries?: Top
  browsers?: Top; devices?: Top; events?: Top
  goals?: { items: Goal[] }
  feed?: { sample_every: number; items: FeedItem[] }
}
interface SeriesDelta { end: number; points?: [number, number, number][] }

export type LiveStatus = 'connecting' | 'live' | 'reconnecting' | 'failed'

/** Close codes of the live stream (docs/protocol.md). */
const CLOSE_AUTH = 4001, CLOSE_FORBIDDEN = 4003, CLOSE_REVOKED = 4007, CLOSE_QUOTA = 4429

/** FEED_SIZE is the number of feed items the server keeps; the client keeps as many. */
const FEED_SIZE = 50
/** Reconnection backoff: full jitter between MIN_DELAY and an exponential cap up to MAX_DELAY. */
const MIN_DELAY = 250, BASE_DELAY = 500, MAX_DELAY = 10000
/** QUIET_MS: after this long without a frame the client pings; PONG_MS later without an answer, it reconnects. */
const QUIET_MS = 8000, PONG_MS = 4000

export interface LiveUpdate { state: LiveState | null; status: LiveStatus; message: string; retryAt: number }

/** applySeries moves a series window to d.end and sets d.points. */
function applySeries(s: Series, d: SeriesDelta): Series {
  const len = s.events.length
  const shift = Math.min(len, Math.max(0, d.end - s.end))
  const events = s.events.slice(shift).concat(new Array(shift).fill(0))
  const pageviews = s.pageviews.slice(shift).concat(new Array(shift).fill(0))
  const start = d.end - len + 1
  for (const [t, ev, pv] of d.points || []) {
    const i = t - start
    if (i >= 0 && i < len) { events[i] = ev; pageviews[i] = pv }
  }
  return { end: d.end, events, pageviews }
}

/** apply turns the state at prev into the state of a delta's changes (a new object). */
export function apply(state: LiveState, changes: any): LiveState {
  const next: LiveState = { ...state, time: changes.time }
  for (const [view, value] of Object.entries(changes)) {
    if (view === 'time') continue
    if (view === 'rates' && state.rates) {
      const r = value as { seconds?: SeriesDelta; minutes?: SeriesDelta }
      next.rates = {
        seconds: r.seconds ? applySeries(state.rates.seconds, r.seconds) : state.rates.seconds,
        minutes: r.minutes ? applySeries(state.rates.minutes, r.minutes) : state.rates.minutes,
      }
    } else if (view === 'feed') {
      const f = value as { sample_every: number; add?: FeedItem[] }
      const items = (state.feed?.items || []).concat(f.add || []).slice(-FEED_SIZE)
      next.feed = { sample_every: f.sample_every, items }
    } else {
      (next as any)[view] = value
    }
  }
  return next
}

/**
 * LiveClient keeps one site's live state up to date. The browser's session cookie
 * authenticates the socket; a share link's token is sent in an auth frame instead.
 */
export class LiveClient {
  private ws: WebSocket | null = null
  private state: LiveState | null = null
  private seq = -1
  private attempt = 0
  private timer = 0
  private watchdog = 0
  private lastFrame = 0
  private pingSent = 0
  private stopped = false
  private status: LiveStatus = 'connecting'
  private message = ''
  private retryAt = 0

  constructor(private site: string, private token: string, private onUpdate: (u: LiveUpdate) => void, private views: string[] = []) {}

  start() {
    this.stopped = false
    this.connect()
    window.addEventListener('online', this.wake)
    document.addEventListener('visibilitychange', this.wake)
    this.watchdog = window.setInterval(() => {
      const ws = this.ws, now = Date.now()
      if (!ws || ws.readyState !== WebSocket.OPEN) return
      if (this.pingSent && now - this.pingSent > PONG_MS) this.drop()
      else if (!this.pingSent && now - this.lastFrame > QUIET_MS) {
        this.pingSent = now
        ws.send(JSON.stringify({ type: 'ping', id: now }))
      }
    }, 1000)
  }

  stop() {
    this.stopped = true
    clearTimeout(this.timer)
    clearInterval(this.watchdog)
    window.removeEventListener('online', this.wake)
    document.removeEventListener('visibilitychange', this.wake)
    const ws = this.ws
    this.ws = null
    ws?.close(1000)
  }

  /** wake reconnects at once when the browser comes back online or the tab is shown again. */
  private wake = () => {
    if (this.stopped || document.visibilityState === 'hidden') return
    if (this.status === 'reconnecting' && (!this.ws || this.ws.readyState !== WebSocket.OPEN)) {
      clearTimeout(this.timer)
      this.connect()
    }
  }

  private emit() {
    this.onUpdate({ state: this.state, status: this.status, message: this.message, retryAt: this.retryAt })
  }

  private connect() {
    if (this.stopped) return
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/v1/live'
    let ws: WebSocket
    try {
      ws = new WebSocket(url)
    } catch {
      this.retry()
      return
    }
    this.ws = ws
    this.lastFrame = Date.now()
    this.pingSent = 0
    ws.onopen = () => {
      if (this.token) ws.send(JSON.stringify({ type: 'auth', token: this.token }))
      ws.send(JSON.stringify({ type: 'subscribe', site: this.site, views: this.views }))
    }
    ws.onmessage = e => {
      if (ws !== this.ws) return
      this.lastFrame = Date.now()
      this.pingSent = 0
      let f: any
      try { f = JSON.parse(e.data) } catch { return }
      if (f.type === 'snapshot') {
        this.state = f.state
        this.seq = f.seq
      } else if (f.type === 'delta') {
        if (!this.state || f.prev !== this.seq) { this.drop(); return } // a lost frame: start over
        this.state = apply(this.state, f.changes)
        this.seq = f.seq
      } else {
        return
      }
      this.attempt = 0
      if (this.status !== 'live') { this.status = 'live'; this.message = ''; this.retryAt = 0 }
      this.emit()
    }
    ws.onclose = e => {
      if (ws !== this.ws || this.stopped) return
      this.ws = null
      this.seq = -1
      switch (e.code) {
        case CLOSE_AUTH:
          this.fail(this.token ? 'This share link is no longer valid.' : 'Your session ended: log in again.')
          if (!this.token) location.assign('/login?next=' + encodeURIComponent(location.pathname + location.search))
          return
        case CLOSE_FORBIDDEN:
        case CLOSE_REVOKED:
          this.fail(this.token ? 'This share link was revoked or has expired.' : 'You no longer have access to this site.')
          return
        case CLOSE_QUOTA: {
          const m = /retry_after=(\d+)/.exec(e.reason)
          this.retry(m ? +m[1] * 1000 : MAX_DELAY)
          return
        }
      }
      this.retry()
    }
  }

  /** drop closes the current socket as lost and reconnects. */
  private drop() {
    const ws = this.ws
    if (!ws) return
    this.ws = null
    this.seq = -1
    ws.onclose = null
    ws.close()
    this.retry()
  }

  private fail(message: string) {
    this.status = 'failed'
    this.message = message
    this.emit()
  }

  private retry(delay?: number) {
    if (this.stopped) return
    const cap = Math.min(MAX_DELAY, BASE_DELAY * 2 ** this.attempt++)
    const wait = delay ?? Math.max(MIN_DELAY, Math.random() * cap)
    this.status = 'reconnecting'
    this.message = ''
    this.retryAt = Date.now() + wait
    this.emit()
    clearTimeout(this.timer)
    this.timer = window.setTimeout(() => this.connect(), wait)
  }
}
