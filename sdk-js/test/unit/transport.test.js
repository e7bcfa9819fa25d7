// The tracker's transport after trouble: the HTTP fallback and the WebSocket attempts that
// go on beside it, resends after a resume, and the bound on frames waiting for their ack.
import { test, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { load, page, timers, settle, restore, bucket } from './harness.js'

const def = await load(false)
const { start, FRAME_DELAY, MAX_IN_FLIGHT, CHUNK_EVENTS, BACKOFF_BASE, BACKOFF_MAX } = def

afterEach(restore)
const opts = { site: 'pk_test', host: 'https://pulse.example/' }

function run(t) {
  const tick = timers(), p = page()
  t.after(p.close)
  const api = start(p.w, opts)
  const stored = () => JSON.parse(p.w.localStorage.getItem('pulse:pk_test')).q.length
  return { p, api, tick, ws: () => p.sockets.at(-1), stored }
}
const names = frames => frames.flatMap(f => f.events.map(e => e.name || e.type))

test('fallback: WebSocket attempts go on with the backoff after HTTP has emptied the queue; after a welcome events go by WebSocket again', async t => {
  const { p, api, tick, ws, stored } = run(t)
  tick(FRAME_DELAY)
  ws().drop(1006)
  tick(BACKOFF_BASE)
  ws().drop(1006)
  await settle()
  assert.deepEqual(p.posts.map(x => names([x])), [['page']], 'two failed attempts: the pageview goes by POST')
  assert.equal(stored(), 0, 'and the queue is empty')
  // Attempt n (0-based) comes within min(BACKOFF_MAX, BACKOFF_BASE·2ⁿ) ms of the last failure,
  // whether or not anything waits; events go by POST meanwhile.
  for (let n = 2; n < 9; n++) {
    const before = p.sockets.length
    tick(Math.min(BACKOFF_MAX, BACKOFF_BASE * 2 ** n))
    assert.equal(p.sockets.length, before + 1, `attempt ${n + 1} within its backoff window`)
    if (n == 5) {
      api.track('meanwhile')
      tick(FRAME_DELAY)
      await settle()
      assert.deepEqual(names([p.posts.at(-1)]), ['meanwhile'], 'while the attempt is under way, HTTP carries the event')
    }
    ws().drop(1006)
    await settle()
  }
  assert.equal(stored(), 0)
  tick(BACKOFF_MAX)
  ws().welcome()
  const posts = p.posts.length
  api.track('back')
  tick(FRAME_DELAY)
  await settle()
  assert.deepEqual(names(ws().frames()), ['back'], 'back on the WebSocket')
  assert.equal(p.posts.length, posts, 'and not by POST')
})

test('fallback: permanent refusal (a constructor that throws, close 4002 or 4003) means HTTP only, without further attempts', async t => {
  for (const refusal of ['throws', 4002, 4003]) {
    const { p, api, tick, ws } = run(t)
    let tries = 0
    const WS = p.w.WebSocket
    p.w.WebSocket = class extends WS {
      constructor(u) { tries++; if (refusal == 'throws') throw new Error('blocked by CSP'); super(u) }
    }
    tick(FRAME_DELAY)
    if (refusal != 'throws') ws().welcome(), ws().drop(refusal, 'refused')
    api.track('x')
    for (let i = 0; i < 3; i++) tick(FRAME_DELAY), await settle() // the second POST waits for the first
    tick(10 * 60000)
    assert.equal(tries, 1, `${refusal}: one attempt in 10 minutes`)
    assert.ok(p.posts.some(x => names([x]).includes('x')), `${refusal}: events go by POST`)
    restore()
  }
})

test('opt-out: no reconnect after the connection it closes', t => {
  const { p, api, tick, ws } = run(t)
  tick(FRAME_DELAY)
  ws().welcome()
  api.optOut()
  tick(10 * 60000)
  assert.equal(p.sockets.length, 1)
})

// inFlight returns the highest number of frames a socket had sent without their ack, at any moment.
function inFlight(s) {
  let most = 0, acked = 0, sent = 0
  for (const m of s.log) {
    if (m.ack) acked = Math.max(acked, m.ack)
    else if (m.type == 'events') sent = m.seq, most = Math.max(most, sent - acked)
  }
  return most
}
// logged records, in order, the frames a socket sends and the acks it receives.
function logged(s) {
  s.log = []
  const send = s.send.bind(s), recv = s.recv.bind(s)
  s.send = d => (send(d), s.log.push(JSON.parse(d)))
  s.recv = f => (f.type == 'ack' && s.log.push({ ack: f.seq }), recv(f))
  return s
}

test('resume: 300 unacknowledged events go again in full frames with new seqs, within the server frame rate limit', t => {
  const { p, api, tick, ws } = run(t)
  tick(FRAME_DELAY)
  ws().welcome()
  ws().recv({ type: 'ack', seq: 1 })
  // 300 single events, 25 ms apart, while no ack comes (ClickHouse is slow, or the network stalled).
  for (let i = 0; i < 300; i++) api.track('e' + i), tick(FRAME_DELAY)
  const lastSeq = ws().frames().at(-1).seq
  const ids = JSON.parse(p.w.localStorage.getItem('pulse:pk_test')).q.map(x => x.e.id)
  assert.equal(ids.length, 300)
  assert.equal(bucket(ws().at), -1, 'the first connection keeps within the rate limit')
  ws().drop(1006)
  tick(BACKOFF_BASE)
  const s = ws()
  s.open()
  s.recv({ type: 'welcome', resume: 'r2', resumed: true, last_seq: 1 })
  for (let i = 0; i < 40; i++) tick(FRAME_DELAY)
  const frames = s.frames()
  assert.equal(bucket(s.at), -1, `the resend keeps within 50 frames/s, burst 100: ${frames.length} frames in ${s.at.at(-1) - s.at[0]} ms`)
  assert.deepEqual(frames.map(f => f.events.length), [100, 100, 100], 'full frames')
  assert.deepEqual(frames.map(f => f.seq), [lastSeq + 1, lastSeq + 2, lastSeq + 3], 'seq grows on from the last frame sent')
  assert.ok(s.at[2] - s.at[1] >= FRAME_DELAY && s.at[3] - s.at[2] >= FRAME_DELAY, 'paced by FRAME_DELAY')
  assert.deepEqual(names(frames), Array.from({ length: 300 }, (_, i) => 'e' + i), 'every unacknowledged event once, in order')
  assert.deepEqual(frames.flatMap(f => f.events.map(e => e.id)), ids, 'with their ids')
})

test('in flight: with acks stalled at most MAX_IN_FLIGHT frames wait; later events go in fuller frames when acks come', t => {
  assert.ok(MAX_IN_FLIGHT >= 2 && MAX_IN_FLIGHT <= 20, `MAX_IN_FLIGHT ${MAX_IN_FLIGHT}: well under the server's burst of 100`)
  const { api, tick, ws, stored } = run(t)
  tick(FRAME_DELAY)
  const s = logged(ws())
  s.welcome()
  let n = 0
  for (let i = 0; i < 300; i++) api.track('e' + n++), tick(FRAME_DELAY)
  assert.equal(s.frames().length, MAX_IN_FLIGHT, 'no acks: MAX_IN_FLIGHT frames, then nothing')
  // Acks come slowly, one frame at a time every second, while events keep coming.
  for (let round = 0; round < 10; round++) {
    s.recv({ type: 'ack', seq: s.frames()[round].seq })
    for (let i = 0; i < 40; i++) api.track('e' + n++), tick(FRAME_DELAY)
    assert.ok(inFlight(s) <= MAX_IN_FLIGHT, `round ${round}: ${inFlight(s)} frames in flight`)
  }
  // Then the server catches up.
  for (let i = 0; i < 40; i++) {
    const f = s.frames()
    s.recv({ type: 'ack', seq: f.at(-1).seq })
    tick(FRAME_DELAY)
  }
  assert.equal(stored(), 0, 'everything acknowledged')
  assert.ok(inFlight(s) <= MAX_IN_FLIGHT, `${inFlight(s)} frames in flight at most`)
  const sent = names(s.frames())
  assert.deepEqual(sent.slice(1), Array.from({ length: n }, (_, i) => 'e' + i), 'every event once, in order')
  assert.ok(s.frames().length < n / 10, `${n} events in ${s.frames().length} frames: they waited together`)
  assert.ok(s.frames().every(f => f.events.length <= CHUNK_EVENTS))
  assert.equal(bucket(s.at), -1)
})
