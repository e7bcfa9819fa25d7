import { test, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { load, page, timers, settle, restore } from './harness.js'

// The code of pulse.js (def) and of pulse.full.js (full).
const def = await load(false), full = await load(true)
const { start, FRAME_DELAY, CONNECT_TIMEOUT, PING_EVERY, PONG_WAIT } = def

afterEach(restore)
const opts = extra => ({ site: 'pk_test', host: 'https://pulse.example/', ...extra })

// run starts the tracker on a fresh page (the full build's with o.full); returns the
// recorder, the API and tick.
function run(t, o = {}, url, pageOpts) {
  const tick = timers(), p = page(url, pageOpts)
  t.after(p.close)
  const api = o.full ? full.start(p.w, opts(o), full.auto) : start(p.w, opts(o))
  return { p, api, tick, ws: () => p.sockets.at(-1) }
}

test('batching: a pageview and events of the same moment share one frame after a hello', t => {
  const { p, api, tick, ws } = run(t)
  api.track('signup', { plan: 'pro' })
  api.track('click')
  tick(FRAME_DELAY)
  assert.equal(p.sockets.length, 1, 'one WebSocket per page')
  assert.equal(ws().url, 'wss://pulse.example/v1/ingest?site=pk_test')
  ws().welcome()
  assert.deepEqual(ws().sent[0], { type: 'hello', v: 1, sdk: 'pulse-js', sdk_version: '1.0.0' })
  const frames = ws().frames()
  assert.equal(frames.length, 1)
  assert.equal(frames[0].seq, 1)
  assert.deepEqual(frames[0].events.map(e => e.type + ':' + (e.name || '')), ['page:', 'track:signup', 'track:click'])
  const [pv, ev] = frames[0].events
  assert.equal(pv.url, 'https://shop.example/pricing')
  assert.deepEqual(ev.props, { plan: 'pro' })
  assert.match(ev.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  assert.equal(new Set(frames[0].events.map(e => e.id)).size, 3, 'every event has its own id')
  api.track('later')
  tick(FRAME_DELAY)
  assert.equal(ws().frames()[1].seq, 2, 'seq grows')
})

test('acks: events stay queued (and stored) until their frame is acknowledged', t => {
  const { p, api, tick, ws } = run(t)
  tick(FRAME_DELAY)
  ws().welcome()
  api.track('a')
  tick(FRAME_DELAY)
  const stored = () => JSON.parse(p.w.localStorage.getItem('pulse:pk_test')).q.length
  assert.equal(stored(), 2)
  ws().recv({ type: 'ack', seq: 1 })
  assert.equal(stored(), 1, 'frame 1 (the pageview) is acknowledged')
  ws().recv({ type: 'ack', seq: 2 })
  assert.equal(stored(), 0)
})

test('reconnect: lost connection resumes and resends the unacknowledged events in a new frame', t => {
  const { p, api, tick, ws } = run(t)
  tick(FRAME_DELAY)
  ws().welcome()
  api.track('a')
  tick(FRAME_DELAY)
  api.track('b')
  tick(FRAME_DELAY)
  ws().recv({ type: 'ack', seq: 1 })
  ws().drop(1006)
  assert.equal(p.sockets.length, 1, 'no reconnect before the backoff delay')
  tick(500)
  assert.equal(p.sockets.length, 2, 'first retry within 0.5 s')
  ws().open()
  assert.equal(ws().sent[0].resume, 'r1')
  ws().recv({ type: 'welcome', resume: 'r2', resumed: true, last_seq: 2 })
  const frames = ws().frames()
  assert.deepEqual(frames.map(f => [f.seq, f.events.map(e => e.name)]), [[4, ['b']]], 'frame 2 was committed; the event of frame 3 goes again in frame 4')
  assert.equal(frames[0].events[0].id, p.sockets[0].frames()[2].events[0].id, 'with its id')
  api.track('c')
  tick(FRAME_DELAY)
  assert.equal(ws().frames().at(-1).seq, 5)
})

test('reconnect: a new session resends every unacknowledged event in new frames from seq 1', t => {
  const { api, tick, ws } = run(t)
  tick(FRAME_DELAY)
  ws().welcome()
  api.track('a')
  tick(FRAME_DELAY)
  ws().drop(4000, 'going away')
  tick(500)
  ws().welcome({ resumed: false, last_seq: 0 })
  const f = ws().frames()
  assert.deepEqual(f.map(x => x.seq), [1])
  assert.deepEqual(f[0].events.map(e => e.type + (e.name || '')), ['page', 'tracka'])
})

test('reconnect: in a new session, an ack of the first resent frame keeps the events still waiting for theirs', t => {
  const { api, tick, ws } = run(t)
  tick(FRAME_DELAY)
  ws().welcome()
  for (let i = 0; i < 150; i++) api.track('e' + i)
  tick(FRAME_DELAY)
  tick(FRAME_DELAY)
  assert.deepEqual(ws().frames().map(f => f.events.length), [1, 100, 50])
  ws().drop(4000, 'going away')
  tick(500)
  ws().welcome({ resumed: false, last_seq: 0 })
  assert.deepEqual(ws().frames().map(f => [f.seq, f.events.length]), [[1, 100]], 'at most 100 events a frame')
  ws().recv({ type: 'ack', seq: 1 })
  tick(FRAME_DELAY)
  assert.deepEqual(ws().frames().map(f => [f.seq, f.events.length]), [[1, 100], [2, 51]])
  assert.equal(ws().frames()[1].events.at(-1).name, 'e149')
})

test('reconnect: delays follow the backoff and no attempt is made while offline', t => {
  const { p, tick, ws } = run(t)
  tick(FRAME_DELAY)
  ws().welcome()
  ws().drop(1006)
  // The queue holds the unacknowledged pageview; attempt n waits at most 500·2ⁿ ms.
  let attempts = 1
  for (let n = 0; n < 8; n++) {
    tick(Math.min(30000, 500 * 2 ** n))
    assert.equal(p.sockets.length, ++attempts, `attempt ${n + 1} within its window`)
    ws().drop(1006)
  }
  p.setOnline(false)
  tick(120000)
  const offline = p.sockets.length
  assert.ok(offline <= attempts + 1, 'nothing but a timer already due while offline')
  tick(600000)
  assert.equal(p.sockets.length, offline, 'no retries while navigator.onLine is false')
  p.setOnline(true)
  tick(FRAME_DELAY)
  assert.equal(p.sockets.length, offline + 1, 'back online: reconnect at once')
})

test('heartbeat: a connection that does not answer a ping is replaced', t => {
  const { p, tick, ws } = run(t)
  tick(FRAME_DELAY)
  ws().welcome()
  tick(PING_EVERY)
  assert.deepEqual(ws().sent.at(-1), { type: 'ping' })
  ws().recv({ type: 'pong' })
  tick(PONG_WAIT)
  assert.equal(ws().closedWith, undefined, 'answered: kept')
  tick(PING_EVERY - PONG_WAIT)
  tick(PONG_WAIT)
  assert.equal(ws().closedWith, 1000, 'silent: closed')
  tick(500)
  assert.equal(p.sockets.length, 2, 'and replaced')
})

test('connect timeout: no welcome within the timeout counts as a failed attempt', t => {
  const { p, tick, ws } = run(t)
  tick(FRAME_DELAY)
  ws().open()
  tick(CONNECT_TIMEOUT)
  assert.equal(ws().closedWith, 1000)
  tick(500)
  assert.equal(p.sockets.length, 2)
})

test('busy (full build): no new frames until an ack or retry_after_ms', t => {
  const { api, tick, ws } = run(t, { full: true })
  tick(FRAME_DELAY)
  ws().welcome()
  ws().recv({ type: 'busy', retry_after_ms: 2000 })
  api.track('x')
  tick(FRAME_DELAY)
  assert.equal(ws().frames().length, 1)
  tick(2000)
  assert.equal(ws().frames().length, 2)
  ws().recv({ type: 'busy', retry_after_ms: 2000 })
  api.track('y')
  tick(FRAME_DELAY)
  ws().recv({ type: 'ack', seq: 2 })
  api.track('z')
  tick(FRAME_DELAY)
  assert.deepEqual(ws().frames().slice(2).flatMap(f => f.events.map(e => e.name)), ['y', 'z'], 'an ack ends the pause (50 ms of 2000)')
})

test('fallback: after two failed connections events go by POST /v1/events; 503 keeps them', async t => {
  const { p, api, tick, ws } = run(t)
  p.fetchStatus = 503
  tick(FRAME_DELAY)
  ws().drop(1006)
  tick(500)
  ws().drop(1006)
  await settle()
  assert.equal(p.posts.length, 1)
  assert.equal(p.posts[0].url, 'https://pulse.example/v1/events?site=pk_test')
  assert.equal(p.posts[0].init.keepalive, true)
  assert.deepEqual(p.posts[0].events.map(e => e.type), ['page'])
  p.fetchStatus = 202
  api.track('x')
  tick(FRAME_DELAY)
  await settle()
  assert.deepEqual(p.posts[1].events.map(e => e.type), ['page', 'track'], '503: resent')
  await settle()
  assert.equal(JSON.parse(p.w.localStorage.getItem('pulse:pk_test')).q.length, 0, '202: delivered')
})

test('fallback: a WebSocket that throws (CSP) means HTTP only, and nothing throws into the page', async t => {
  const tick = timers(), p = page()
  t.after(p.close)
  p.wsThrows = true
  const api = start(p.w, opts())
  api.track('x')
  tick(FRAME_DELAY)
  await settle()
  assert.deepEqual(p.posts[0].events.map(e => e.type), ['page', 'track'])
  const loop = {}
  loop.self = loop
  assert.doesNotThrow(() => api.track('bad', loop))
  assert.ok(p.logs.some(l => /Pulse/.test(l)), 'the error is logged instead')
})

for (const build of ['default', 'full']) test(`pagehide (${build} build): unacknowledged events go by sendBeacon and stay stored for the next page`, t => {
  const { p, api, tick, ws } = run(t, { full: build == 'full' })
  tick(FRAME_DELAY)
  ws().welcome()
  api.track('bye')
  p.w.dispatchEvent(new p.w.Event('pagehide'))
  // The full build's engagement of the page being left goes with them.
  assert.deepEqual(p.beacons[0].events.map(e => e.type + (e.name || '')), ['page', 'trackbye', ...build == 'full' ? ['trackengagement'] : []])
  assert.equal(p.beacons[0].url, 'https://pulse.example/v1/events?site=pk_test')
  const s = JSON.parse(p.w.localStorage.getItem('pulse:pk_test'))
  assert.equal(s.q.length, p.beacons[0].events.length, 'still stored')
  // The full build releases them to the next page; the default build's next page adopts every stored event.
  if (build == 'full') assert.deepEqual(s.q.map(x => x.o), [0, 0, 0], 'released to the next page')
  // The next page adopts and sends them again (the server keeps one copy per id).
  const api2 = (build == 'full' ? full : def).start(p.w, opts({ auto: false }))
  api2.track('next')
  tick(FRAME_DELAY)
  p.sockets.at(-1).welcome()
  const sent = p.sockets.at(-1).frames().flatMap(f => f.events.map(e => e.id))
  assert.ok(p.beacons[0].events.every(e => sent.includes(e.id)))
})

test('decline: localhost, webdriver, opt-out, DNT/GPC when configured, excluded paths (full build) — one console line each', t => {
  const cases = [
    ['http://localhost:3000/', {}, {}, 'not tracking: localhost'],
    ['http://127.0.0.1:8080/', {}, {}, 'not tracking: localhost'],
    ['https://shop.example/', {}, { webdriver: true }, 'not tracking: webdriver'],
    ['https://shop.example/admin/x', { exclude: full.matcher('/admin/*'), full: true }, {}, 'not tracking: excluded path'],
    ['https://shop.example/', { site: '' }, {}, 'not tracking: no data-site'],
  ]
  for (const [url, o, po, line] of cases) {
    const { p, api, tick } = run(t, o, url, po)
    api.track('x')
    tick(FRAME_DELAY * 10)
    assert.equal(p.sockets.length + p.posts.length, 0, url)
    assert.deepEqual(p.logs, ['Pulse: ' + line], url)
    restore()
  }
  const { p, tick } = run(t, { local: true }, 'http://127.0.0.1:8080/')
  tick(FRAME_DELAY)
  assert.equal(p.sockets.length, 1, 'data-local tracks localhost')
})

test('decline (full build): DNT and GPC only when configured', t => {
  for (const [k, v] of [['doNotTrack', '1'], ['globalPrivacyControl', true]]) {
    for (const dnt of [false, true]) {
      const tick = timers(), p = page()
      Object.defineProperty(p.w.navigator, k, { value: v, configurable: true })
      full.start(p.w, opts({ dnt }))
      tick(FRAME_DELAY)
      assert.equal(p.sockets.length, dnt ? 0 : 1, `${k} with dnt=${dnt}`)
      p.close()
      restore()
    }
  }
})

test('decline (default build): data-dnt and data-exclude, options of the full build, stop tracking instead of being ignored', t => {
  for (const o of [{ dnt: 'true' }, { exclude: '/admin/*' }]) {
    const { p, api, tick } = run(t, o, 'https://shop.example/')
    api.track('x')
    tick(FRAME_DELAY * 10)
    assert.equal(p.sockets.length + p.posts.length, 0, JSON.stringify(o))
    assert.deepEqual(p.logs, ['Pulse: not tracking: data-dnt and data-exclude need pulse.full.js'])
    restore()
  }
})

test('quota (close 4429): the full build waits retry_after, the default build its backoff', t => {
  for (const build of ['default', 'full']) {
    const { p, tick, ws } = run(t, { full: build == 'full' })
    tick(FRAME_DELAY)
    ws().welcome()
    ws().drop(4429, 'events_per_second retry_after=3')
    tick(500)
    assert.equal(p.sockets.length, build == 'full' ? 1 : 2, `${build}: within the first backoff window`)
    tick(2500)
    assert.equal(p.sockets.length, 2, `${build}: after 3 s`)
    restore()
  }
})

test('opt-out: stops tracking at once, forgets the queue, persists; opt-in resumes', t => {
  const { p, api, tick, ws } = run(t)
  tick(FRAME_DELAY)
  ws().welcome()
  api.optOut()
  api.track('x')
  tick(1000)
  assert.equal(ws().frames().flatMap(f => f.events).length, 1, 'only the pageview sent before')
  assert.equal(JSON.parse(p.w.localStorage.getItem('pulse:pk_test')).q.length, 0)
  const api2 = start(p.w, opts())
  assert.equal(p.logs.at(-1), 'Pulse: not tracking: opted out')
  api2.optIn()
  api2.track('back')
  tick(FRAME_DELAY)
  p.sockets.at(-1).welcome()
  assert.deepEqual(p.sockets.at(-1).frames()[0].events.map(e => e.name), ['back'])
})

test('SPA: pushState to a new path is a pageview with the previous page as referrer', t => {
  const { p, tick, ws } = run(t, {}, 'https://shop.example/a?x=1')
  const h = p.w.history
  h.pushState({}, '', '/b')
  h.replaceState({}, '', '/b?tab=2') // same path: no pageview
  h.pushState({}, '', '/b#top') // hash only: no pageview without data-hash
  h.pushState({}, '', '/c')
  tick(FRAME_DELAY)
  ws().welcome()
  const pv = ws().frames().flatMap(f => f.events).filter(e => e.type == 'page')
  assert.deepEqual(pv.map(e => [e.url, e.referrer]), [
    ['https://shop.example/a?x=1', undefined],
    ['https://shop.example/b', 'https://shop.example/a?x=1'],
    ['https://shop.example/c', 'https://shop.example/b'],
  ])
})

test('SPA: popstate, and hashchange with data-hash (full build)', t => {
  const { p, tick, ws } = run(t, { hash: true, full: true }, 'https://shop.example/app#/one')
  p.w.location.hash = '#/two'
  p.w.dispatchEvent(new p.w.Event('hashchange'))
  p.w.history.replaceState({}, '', '/other')
  tick(FRAME_DELAY)
  ws().welcome()
  const urls = ws().frames().flatMap(f => f.events).filter(e => e.type == 'page').map(e => e.url)
  assert.deepEqual(urls, ['https://shop.example/app#/one', 'https://shop.example/app#/two', 'https://shop.example/other'])
})

test('identify: the token goes in a new hello; the identify event carries userId and traits', t => {
  const { p, api, tick, ws } = run(t)
  tick(FRAME_DELAY)
  ws().welcome()
  api.identify('u42', { plan: 'pro' }, { token: 'jwt.a.b' })
  tick(500)
  assert.equal(p.sockets.length, 2)
  ws().open()
  assert.equal(ws().sent[0].identity, 'jwt.a.b')
  assert.equal(ws().sent[0].resume, 'r1')
  ws().recv({ type: 'welcome', resume: 'r2', resumed: true, last_seq: 0 })
  const ev = ws().frames().flatMap(f => f.events).find(e => e.type == 'identify')
  assert.deepEqual(ev.props, { userId: 'u42', plan: 'pro' })
  ws().drop(4001, 'identity expired')
  tick(30000)
  ws().open()
  assert.equal(ws().sent[0].identity, undefined, 'a refused token is not sent again')
})

test('full build: outbound links, downloads, data-pulse-event and engagement', t => {
  const { p, tick, ws } = run(t, { full: true })
  const d = p.w.document
  d.body.innerHTML = '<a id=o href="https://other.example/x">o</a><a id=f href="/files/report.PDF">f</a><a id=i href="/in">i</a>' +
    '<button data-pulse-event="Signup" data-pulse-prop-plan="pro"><span id=s>go</span></button>'
  d.body.addEventListener('click', e => e.preventDefault()) // happy-dom would follow the links
  for (const id of ['o', 'f', 'i', 's']) d.getElementById(id).dispatchEvent(new p.w.MouseEvent('click', { bubbles: true, cancelable: true }))
  tick(4000)
  Object.defineProperty(d, 'visibilityState', { value: 'hidden', configurable: true })
  d.dispatchEvent(new p.w.Event('visibilitychange'))
  p.w.dispatchEvent(new p.w.Event('visibilitychange'))
  tick(FRAME_DELAY)
  ws().welcome()
  const ev = ws().frames().flatMap(f => f.events).filter(e => e.type == 'track')
  assert.deepEqual(ev.slice(0, 3).map(e => [e.name, e.props]), [
    ['Outbound Link', { url: 'https://other.example/x' }],
    ['File Download', { url: 'https://shop.example/files/report.PDF' }],
    ['Signup', { plan: 'pro' }],
  ])
  const eng = ev.find(e => e.name == 'engagement')
  assert.ok(eng && eng.props.ms >= 4000 && eng.props.ms < 5000, JSON.stringify(eng))
  assert.equal(typeof eng.props.scroll, 'number')
})

test('full build: the engagement event of a page being hidden leaves at once, not after the frame delay', t => {
  const { p, tick, ws } = run(t, { full: true })
  tick(FRAME_DELAY)
  ws().welcome()
  tick(3000)
  Object.defineProperty(p.w.document, 'visibilityState', { value: 'hidden', configurable: true })
  p.w.document.dispatchEvent(new p.w.Event('visibilitychange'))
  const last = ws().frames().at(-1).events
  assert.deepEqual(last.map(e => e.name), ['engagement'])
  assert.ok(last[0].props.ms >= 3000, JSON.stringify(last[0]))
})

test('full build: a page that starts opted out and opts in records pageviews', t => {
  const { p } = run(t)
  p.w.localStorage.pulse_optout = '1'
  const api = full.start(p.w, opts({ auto: false }), full.auto)
  assert.equal(p.logs.at(-1), 'Pulse: not tracking: opted out')
  api.optIn()
  api.page()
  assert.ok(!p.logs.some(l => /Error/.test(l)), p.logs.join('\n'))
  assert.deepEqual(JSON.parse(p.w.localStorage.getItem('pulse:pk_test')).q.map(x => x.e.type), ['page', 'page'])
})

test('limits: an event over EVENT_BYTES is dropped with a console line; the events after it go', t => {
  const { p, api, tick, ws } = run(t)
  tick(FRAME_DELAY)
  ws().welcome()
  ws().recv({ type: 'ack', seq: 1 })
  api.track('huge', { blob: 'x'.repeat(70000) }) // over a whole frame: the server would close 1009
  api.track('big', { blob: 'é'.repeat(4500) }) // 4,500 characters, 9,000 bytes of UTF-8
  api.track('after')
  tick(FRAME_DELAY)
  const frames = ws().frames()
  assert.deepEqual(frames.at(-1).events.map(e => e.name), ['after'])
  assert.equal(frames.length, 2)
  assert.equal(p.logs.filter(l => l == 'Pulse: [object Object]').length, 2, p.logs.join('\n'))
  assert.equal(JSON.parse(p.w.localStorage.getItem('pulse:pk_test')).q.length, 1, 'only "after" waits for its ack')
})

test('limits: frames stay under CHUNK_BYTES of UTF-8, however many bytes a character takes', t => {
  const { api, tick, ws } = run(t)
  tick(FRAME_DELAY)
  ws().welcome()
  for (let i = 0; i < 20; i++) api.track('e' + i, { text: '漢'.repeat(2500) }) // 7,500 bytes each
  tick(FRAME_DELAY)
  ws().recv({ type: 'ack', seq: 1 })
  for (let i = 0; i < 5; i++) tick(FRAME_DELAY)
  const frames = ws().frames().slice(1)
  assert.equal(frames.flatMap(f => f.events).length, 20, 'every event went')
  for (const f of frames) {
    const n = new TextEncoder().encode(JSON.stringify(f)).length
    assert.ok(n <= 65536, `a frame of ${n} bytes, over the server's 64 KiB`)
  }
})
