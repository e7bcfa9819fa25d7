import { test, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { load, page, timers, restore } from './harness.js'

// The queue of pulse.js (createQueue) and of pulse.full.js (full.createQueue).
const full = await load(true)
const { createQueue, MAX_EVENTS, MAX_BYTES, MAX_AGE, ORPHAN } = await load(false)

afterEach(restore)
// Events as the tracker queues them: the queue ages them by their ts.
const ev = (i, extra = {}) => ({ id: 'id-' + i, type: 'track', name: 'e' + i, ts: Date.now(), ...extra })
const stored = w => JSON.parse(w.localStorage.getItem('k'))

test('queue: capped by count, oldest dropped first and counted', t => {
  const tick = timers(), p = page()
  t.after(p.close)
  const q = createQueue(p.w, 'k', 'me')
  for (let i = 0; i < MAX_EVENTS + 5; i++) { q.add(ev(i)); tick(1) }
  assert.equal(q.q.length, MAX_EVENTS)
  assert.equal(q.q[0].e.id, 'id-5', 'the five oldest are gone')
  assert.equal(stored(p.w).q.length, MAX_EVENTS)
  assert.equal(stored(p.w).d, 5, 'drops are counted in storage')
})

test('queue: capped by bytes', t => {
  const tick = timers(), p = page()
  t.after(p.close)
  const q = createQueue(p.w, 'k', 'me'), big = 'x'.repeat(7000)
  for (let i = 0; i < 50; i++) { q.add(ev(i, { props: { big } })); tick(1) }
  const bytes = JSON.stringify(stored(p.w).q).length
  assert.ok(bytes <= MAX_BYTES, `${bytes} bytes stored`)
  assert.ok(q.q.length < 50 && q.q.length > 30, `${q.q.length} events kept`)
  assert.equal(q.q.at(-1).e.id, 'id-49', 'the newest is kept')
  assert.equal(stored(p.w).d, 50 - q.q.length)
})

test('queue: events expire after MAX_AGE', t => {
  const tick = timers(), p = page()
  t.after(p.close)
  const q = createQueue(p.w, 'k', 'me')
  q.add(ev(1))
  tick(MAX_AGE - 1000)
  q.add(ev(2))
  tick(2000)
  q.sync()
  assert.deepEqual(q.q.map(x => x.e.id), ['id-2'])
  assert.deepEqual(stored(p.w).q.map(x => x.e.id), ['id-2'])
})

test('queue: acks and drops remove events from memory and storage', t => {
  timers()
  const p = page()
  t.after(p.close)
  const q = createQueue(p.w, 'k', 'me')
  for (let i = 1; i <= 4; i++) q.add(ev(i))
  q.q[0].s = 1; q.q[1].s = 2; q.q[2].s = 3
  q.ack(2)
  assert.deepEqual(q.q.map(x => x.e.id), ['id-3', 'id-4'])
  q.drop([q.q[1]])
  assert.deepEqual(stored(p.w).q.map(x => x.e.id), ['id-3'])
})

test('queue: a new page adopts every stored event once; later events of other pages stay with them', t => {
  const tick = timers(), p = page()
  t.after(p.close)
  const a = createQueue(p.w, 'k', 'pageA')
  a.add(ev(1))
  a.q[0].s = 1
  const b = createQueue(p.w, 'k', 'pageB')
  b.sync()
  assert.deepEqual(b.q.map(x => [x.e.id, x.s]), [['id-1', undefined]], 'adopted at the first sync, not yet sent by B')
  tick(1)
  a.add(ev(2))
  b.sync()
  assert.deepEqual(b.q.map(x => x.e.id), ['id-1'], 'A\'s later event stays with A')
  assert.deepEqual(stored(p.w).q.map(x => [x.e.id, x.o]), [['id-1', 'pageB'], ['id-2', 'pageA']])
  b.ack(5)
  assert.deepEqual(b.q.map(x => x.e.id), ['id-1'], 'an ack covers sent events only')
  b.q[0].s = 1
  b.ack(1)
  a.ack(1)
  assert.deepEqual(stored(p.w).q.map(x => x.e.id), ['id-2'], 'acknowledged by both: gone')
})

test('queue (full build): a released page\'s events are adopted at once, a live page\'s only after ORPHAN', t => {
  const tick = timers(), p = page()
  t.after(p.close)
  const a = full.createQueue(p.w, 'k', 'pageA')
  a.add(ev(1))
  const b = full.createQueue(p.w, 'k', 'pageB')
  b.sync()
  assert.equal(b.q.length, 0, 'A is alive: its event stays with A')
  a.add(ev(2))
  a.sync(0) // pagehide of A
  b.sync()
  assert.deepEqual(b.q.map(x => x.e.id), ['id-1', 'id-2'])
  // A live page whose event stays unacknowledged beyond ORPHAN: the other page sends it too.
  const c = full.createQueue(p.w, 'k', 'pageC')
  c.add(ev(3))
  b.sync()
  assert.ok(!b.q.some(x => x.e.id == 'id-3'))
  tick(ORPHAN + 1)
  b.sync()
  assert.ok(b.q.some(x => x.e.id == 'id-3'))
})

test('queue: works without storage, caps still hold', t => {
  const tick = timers(), p = page(undefined, { storage: false })
  t.after(p.close)
  const q = createQueue(p.w, 'k', 'me')
  for (let i = 0; i < MAX_EVENTS + 3; i++) { q.add(ev(i)); tick(1) }
  assert.equal(q.q.length, MAX_EVENTS)
  assert.equal(q.q[0].e.id, 'id-3')
})
