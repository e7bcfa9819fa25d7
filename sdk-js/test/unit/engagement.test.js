// The full build's engagement event of a page being left, whatever order the browser fires
// pagehide and visibilitychange in: Chromium fires pagehide first (beforeunload → pagehide →
// visibilitychange hidden → unload), Safari and Firefox have fired visibilitychange first,
// a tab switch fires only visibilitychange, and a browser may fire only pagehide.
import { test, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { load, page, timers, restore } from './harness.js'

const full = await load(true)
const { FRAME_DELAY } = full

afterEach(restore)

// run starts the full build with its automatic captures on a fresh page and connects it.
function run(t, { connect = true } = {}) {
  const tick = timers(), p = page()
  t.after(p.close)
  full.start(p.w, { site: 'pk_test', host: 'https://pulse.example/' }, full.auto)
  tick(FRAME_DELAY)
  if (connect) p.sockets[0].welcome()
  const d = p.w.document
  const fire = {
    pagehide: (persisted = false) => p.w.dispatchEvent(Object.assign(new p.w.Event('pagehide'), { persisted })),
    pageshow: (persisted = false) => p.w.dispatchEvent(Object.assign(new p.w.Event('pageshow'), { persisted })),
    // visibilitychange is fired at the document and bubbles to the window.
    visibility: state => {
      Object.defineProperty(d, 'visibilityState', { value: state, configurable: true })
      d.dispatchEvent(new p.w.Event('visibilitychange', { bubbles: true }))
    },
  }
  // engagements returns the engagement events in the beacons and in the frames, by where they went.
  const engagements = () => {
    const eng = list => list.filter(e => e.name == 'engagement')
    return {
      beacon: eng(p.beacons.flatMap(b => b.events)),
      frames: eng(p.sockets.flatMap(s => s.frames()).flatMap(f => f.events)),
    }
  }
  return { p, tick, fire, engagements }
}

// one asserts that the beacons and frames carry exactly one engagement event (one id, sent
// once or twice) for 3 s of visible time on the page, and returns where it went.
function one(got) {
  const all = [...got.beacon, ...got.frames]
  assert.equal(new Set(all.map(e => e.id)).size, 1, 'one engagement event for the page: ' + JSON.stringify(got))
  const ms = all[0].props.ms
  assert.ok(ms >= 3000 && ms < 3000 + 2 * FRAME_DELAY, `visible time ${ms} ms`)
  assert.equal(all[0].url, 'https://shop.example/pricing')
  return got
}

test('engagement: Chromium order (pagehide, then visibilitychange hidden): the pagehide beacon carries it, once', t => {
  for (const connect of [true, false]) {
    const { tick, fire, engagements } = run(t, { connect })
    tick(3000)
    fire.pagehide()
    const atPagehide = engagements()
    assert.equal(atPagehide.beacon.length, 1, `connected: ${connect}: the beacon that leaves at pagehide holds the engagement`)
    fire.visibility('hidden')
    tick(FRAME_DELAY)
    one(engagements())
    restore()
  }
})

test('engagement: visibilitychange hidden first, then pagehide: one event, sent at once and again in the beacon with the same id', t => {
  const { tick, fire, engagements } = run(t)
  tick(3000)
  fire.visibility('hidden')
  assert.equal(engagements().frames.length, 1, 'a frame carries it as soon as the page is hidden')
  fire.pagehide()
  const got = one(engagements())
  assert.equal(got.beacon.length, 1, 'unacknowledged, so the beacon carries it as well')
})

test('engagement: only pagehide (no visibilitychange): the beacon carries it', t => {
  const { tick, fire, engagements } = run(t)
  tick(3000)
  fire.pagehide()
  tick(FRAME_DELAY)
  assert.equal(one(engagements()).beacon.length, 1)
})

test('engagement: only visibilitychange hidden (a tab switch): a frame carries it at once, no beacon', t => {
  const { p, tick, fire, engagements } = run(t)
  tick(3000)
  fire.visibility('hidden')
  assert.equal(one(engagements()).frames.length, 1)
  assert.equal(p.beacons.length, 0)
})

test('engagement: a page restored from the back/forward cache counts its visible time again, not the time it was away', t => {
  const { p, tick, fire, engagements } = run(t)
  tick(3000)
  fire.pagehide(true)
  fire.visibility('hidden')
  tick(60000) // in the cache
  // Restored and visible again; pageshow (persisted) is the one signal every browser gives.
  Object.defineProperty(p.w.document, 'visibilityState', { value: 'visible', configurable: true })
  fire.pageshow(true)
  tick(2000)
  fire.pagehide()
  fire.visibility('hidden')
  tick(FRAME_DELAY)
  const got = engagements()
  const byId = new Map([...got.beacon, ...got.frames].map(e => [e.id, e.props.ms]))
  assert.equal(byId.size, 2, 'one engagement per visible stretch: ' + JSON.stringify(got))
  const [first, second] = [...byId.values()]
  assert.ok(first >= 3000 && first < 3000 + 2 * FRAME_DELAY, `before the cache: ${first} ms`)
  assert.ok(second >= 2000 && second < 2000 + 2 * FRAME_DELAY, `after the restore: ${second} ms, not the minute in the cache`)
})
