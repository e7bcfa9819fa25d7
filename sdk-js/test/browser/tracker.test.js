// The tracker in headless Chromium against a real Pulse and ClickHouse: what a site's
// visitors run, delivering to what Pulse stores.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { chromium } from 'playwright-core'
import { Pulse, tracker, CHROMIUM } from './pulse.js'
import { buildAll } from '../../build.mjs'
import { MAX_IN_FLIGHT } from '../../src/limits.js'

const pulse = new Pulse()
let browser

before(async () => {
  await buildAll()
  await pulse.start()
  // launch() gives the browser a fresh temporary profile (its own --user-data-dir).
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'],
  })
}, { timeout: 180000 })

after(async () => {
  await browser?.close()
  await pulse.stop()
})

// newContext opens a fresh browser context (its own storage). Test pages are fulfilled by
// Playwright's routing, so Chromium knows no address they came from and treats them as
// public; its Local Network Access checks then refuse their WebSocket to Pulse on 127.0.0.1
// (net::ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS) and every event would go by the HTTP
// fallback. A page served from loopback, or a public page talking to a public Pulse, is not
// checked; the permission restores that.
const newContext = () => browser.newContext({ permissions: ['local-network-access'] })

// waitFor polls cond (which may be async) until it holds, for up to ms; it fails with what.
async function waitFor(cond, what, ms = 60000) {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise(r => setTimeout(r, 50))) if (await cond()) return
  assert.fail(`${what}: not within ${ms / 1000} s`)
}

// open serves a test page with the snippet from Pulse's own origin (allowed by the demo
// site) under /__sdk/<name>/ and returns the page. The visitor is a real browser, not a bot:
// navigator.webdriver is hidden; data-local lets the tracker run on 127.0.0.1. With ws, it
// waits until the tracker's WebSocket is welcomed: the tests that do not block it run on it.
async function open(t, name, { build = 'pulse.full.js', context, body = '', ws = !context } = {}) {
  const ctx = context || await newContext()
  if (!context) t.after(() => ctx.close())
  await ctx.addInitScript(() => Object.defineProperty(Navigator.prototype, 'webdriver', { get: () => false }))
  await ctx.route(`${pulse.base}/__sdk/**`, route => {
    const u = new URL(route.request().url())
    if (u.pathname.endsWith('.js')) return route.fulfill({ contentType: 'text/javascript', body: tracker(build) })
    return route.fulfill({
      contentType: 'text/html',
      body: `<!doctype html><title>${name}</title>
<script>window.pulse=window.pulse||function(){(pulse.q=pulse.q||[]).push(arguments)};pulse('track','early',{n:'0'})</script>
<script defer data-site="${pulse.key}" data-local="true" src="/__sdk/${build}"></script>
<a id=out href="https://elsewhere.example/x">out</a>${body}`,
    })
  })
  await ctx.route('https://elsewhere.example/**', r => r.fulfill({ body: 'elsewhere' }))
  const page = await ctx.newPage()
  page.on('console', m => /Pulse/.test(m.text()) && console.log('  [page]', m.text()))
  let welcomed = false
  page.on('websocket', s => s.on('framereceived', f => { welcomed ||= JSON.parse(f.payload).type == 'welcome' }))
  await page.goto(`${pulse.base}/__sdk/${name}/`)
  await page.waitForFunction(() => window.pulse && window.pulse.track)
  if (ws) await waitFor(() => welcomed, 'a welcome on the tracker\'s WebSocket', 20000)
  return page
}

const names = rows => rows.map(r => r.type + ':' + r.name)

test('SPA navigation gives the right pageviews; a queued call, a custom event and an outbound click arrive', async t => {
  const ctx = await newContext()
  t.after(() => ctx.close())
  // The tracker's WebSocket goes through a route that, once cut, no longer passes the page's
  // frames on: what a frame written while the document unloads may meet. What the page sends
  // when it is left must then arrive by the pagehide beacon.
  let cut = false, welcomed = false
  await ctx.routeWebSocket(/\/v1\/ingest/, ws => {
    const server = ws.connectToServer()
    ws.onMessage(m => cut || server.send(m))
    server.onMessage(m => { welcomed ||= JSON.parse(m).type == 'welcome'; ws.send(m) })
  })
  const page = await open(t, 'spa', { context: ctx })
  await waitFor(() => welcomed, 'a welcome on the tracker\'s WebSocket')
  await page.evaluate(() => {
    history.pushState({}, '', '/__sdk/spa/pricing')
    history.replaceState({}, '', '/__sdk/spa/pricing?tab=2')
    history.pushState({}, '', '/__sdk/spa/signup')
    pulse.track('signup', { plan: 'pro', seats: 3 })
  })
  // Everything so far is acknowledged; the outbound click and the last page's engagement
  // can only arrive by the beacon.
  await page.waitForFunction(k => JSON.parse(localStorage['pulse:' + k]).q.length == 0, pulse.key)
  cut = true
  await page.click('#out')
  const { rows, raw } = await pulse.until('/__sdk/spa', r => r.length >= 9)
  // ts is stored in seconds: compare the pageviews as a set and check the referrer chain.
  const pages = Object.fromEntries(rows.filter(r => r.type == 'page').map(r => [r.pathname, r.referrer]))
  assert.deepEqual(pages, {
    '/__sdk/spa/': '',
    '/__sdk/spa/pricing': `${pulse.base}/__sdk/spa/`,
    '/__sdk/spa/signup': `${pulse.base}/__sdk/spa/pricing`,
  }, 'one pageview per path change (not for replaceState on the same path); the referrer is the previous pageview')
  const tracks = rows.filter(r => r.type == 'track')
  assert.deepEqual(tracks.find(r => r.name == 'early').props, { n: '0' }, 'the stub queue is replayed')
  assert.deepEqual(tracks.find(r => r.name == 'signup').props, { plan: 'pro', seats: '3' })
  assert.equal(tracks.find(r => r.name == 'Outbound Link').props.url, 'https://elsewhere.example/x')
  const engaged = rows.filter(r => r.name == 'engagement').map(r => r.pathname).sort()
  assert.deepEqual(engaged, ['/__sdk/spa/', '/__sdk/spa/pricing', '/__sdk/spa/signup'], 'each page sends its engagement when left, the last one in the pagehide beacon')
  assert.equal(rows.length, 9, names(rows).join(', '))
  assert.equal(raw, rows.length, 'no duplicate rows')
})

test('server stopped while the visitor keeps clicking, then restarted: every event arrives exactly once', { timeout: 120000 }, async t => {
  const page = await open(t, 'restart', { build: 'pulse.js' })
  const click = n => page.evaluate(n => pulse.track('click', { n: String(n) }), n)
  for (let n = 1; n <= 5; n++) await click(n)
  await page.waitForTimeout(300)
  await pulse.down()
  for (let n = 6; n <= 15; n++) { await click(n); await page.waitForTimeout(100) }
  await pulse.up()
  for (let n = 16; n <= 20; n++) await click(n)
  const { rows } = await pulse.until('/__sdk/restart', r => r.filter(x => x.name == 'click').length >= 20, 60000)
  const ns = rows.filter(r => r.name == 'click').map(r => +r.props.n).sort((a, b) => a - b)
  assert.deepEqual(ns, Array.from({ length: 20 }, (_, i) => i + 1), 'each click once (merged by event id)')
  assert.equal(new Set(rows.map(r => r.id)).size, rows.length)
})

test('offline, then online: everything arrives', async t => {
  const ctx = await newContext()
  t.after(() => ctx.close())
  const page = await open(t, 'offline', { build: 'pulse.js', context: ctx, ws: true })
  await ctx.setOffline(true)
  for (let n = 1; n <= 5; n++) await page.evaluate(n => pulse.track('offline', { n: String(n) }), n)
  await page.waitForTimeout(2000)
  await ctx.setOffline(false)
  const { rows, raw } = await pulse.until('/__sdk/offline', r => r.filter(x => x.name == 'offline').length >= 5)
  assert.deepEqual(rows.filter(r => r.name == 'offline').map(r => r.props.n).sort(), ['1', '2', '3', '4', '5'])
  assert.ok(raw >= rows.length)
})

test('WebSocket blocked: the HTTP fallback delivers', async t => {
  const ctx = await newContext()
  t.after(() => ctx.close())
  let attempts = 0
  await ctx.routeWebSocket(/\/v1\/ingest/, ws => { attempts++; ws.close({ code: 1006 }) })
  const page = await open(t, 'blocked', { build: 'pulse.js', context: ctx })
  await page.evaluate(() => pulse.track('blocked', { via: 'http' }))
  const { rows } = await pulse.until('/__sdk/blocked', r => r.some(x => x.name == 'blocked'))
  assert.deepEqual(names(rows).sort(), ['page:pageview', 'track:blocked', 'track:early'])
  assert.ok(attempts >= 2, `the tracker tried the WebSocket first (${attempts} attempts)`)
})

test('WebSocket blocked, then let through: HTTP delivers meanwhile, then the page is back on the WebSocket', { timeout: 180000 }, async t => {
  const ctx = await newContext()
  t.after(() => ctx.close())
  // Each connection the page opens is refused while blocked, else passed to Pulse with
  // every message in both directions recorded.
  let blocked = true, refused = 0
  const up = [], down = [], posted = []
  await ctx.routeWebSocket(/\/v1\/ingest/, ws => {
    if (blocked) return refused++, ws.close({ code: 1006 })
    const server = ws.connectToServer()
    ws.onMessage(m => { up.push(JSON.parse(m)); server.send(m) })
    server.onMessage(m => { down.push(JSON.parse(m)); ws.send(m) })
  })
  ctx.on('request', r => r.url().includes('/v1/events') && posted.push(r.postData() || ''))
  const page = await open(t, 'comeback', { build: 'pulse.js', context: ctx })
  await page.evaluate(() => pulse.track('during'))
  await pulse.until('/__sdk/comeback', r => r.some(x => x.name == 'during'))
  assert.ok(posted.some(b => b.includes('"during"')), 'the HTTP fallback carried it')
  // The fallback has emptied the queue: nothing waits, yet the attempts go on.
  await page.waitForFunction(k => JSON.parse(localStorage['pulse:' + k]).q.length == 0, pulse.key)
  const before = refused
  await waitFor(() => refused > before, 'another WebSocket attempt after the queue was emptied')
  blocked = false
  await waitFor(() => down.some(f => f.type == 'welcome'), 'a welcome once the WebSocket is let through')
  await page.evaluate(() => pulse.track('back'))
  await waitFor(() => down.some(f => f.type == 'ack'), 'an ack of a frame sent over the WebSocket')
  const frames = up.filter(f => f.type == 'events')
  assert.deepEqual(frames.flatMap(f => f.events.map(e => e.name)), ['back'], 'the event went in a WebSocket frame')
  assert.ok(!posted.some(b => b.includes('"back"')), 'and not by HTTP')
  const { rows, raw } = await pulse.until('/__sdk/comeback', r => r.some(x => x.name == 'back'))
  assert.deepEqual(names(rows).sort(), ['page:pageview', 'track:back', 'track:during', 'track:early'])
  assert.equal(raw, rows.length, 'each stored once')
})

test('a resume after a stall with 200 unacknowledged events is not rate limited: no close 4029, every event once', { timeout: 120000 }, async t => {
  const ctx = await newContext()
  t.after(() => ctx.close())
  // The first connection stalls: the page's event frames are held, so nothing is
  // acknowledged; then the page loses it and resumes on a second one, which passes all.
  let conns = 0, held = 0, first
  const closes = []
  await ctx.routeWebSocket(/\/v1\/ingest/, ws => {
    const n = ++conns, server = ws.connectToServer()
    if (n == 1) first = ws
    ws.onMessage(m => n == 1 && JSON.parse(m).type == 'events' ? held++ : server.send(m))
    server.onClose((code, reason) => { closes.push(code); ws.close({ code, reason }) })
  })
  const page = await open(t, 'stall', { build: 'pulse.js', context: ctx })
  await waitFor(() => held > 0, 'the pageview held on the stalled connection')
  // A visitor's events over 6 s, 30 ms apart: over the 25 ms frame delay, so without a bound on
  // the frames in flight each would take a frame of its own, all to be resent on resume.
  await page.evaluate(async () => {
    for (let n = 1; n <= 200; n++) pulse.track('stalled', { n: String(n) }), await new Promise(r => setTimeout(r, 30))
  })
  await first.close({ code: 4000, reason: 'stall' })
  const { rows, raw } = await pulse.until('/__sdk/stall', r => r.filter(x => x.name == 'stalled').length >= 200, 60000)
  assert.deepEqual(closes, [4000], 'only the close of the stalled connection, none by the server (4029: rate limited)')
  assert.ok(held <= MAX_IN_FLIGHT, `${held} frames in flight on the stalled connection`)
  assert.equal(conns, 2, 'one resume, no reconnects after it')
  const ns = rows.filter(r => r.name == 'stalled').map(r => +r.props.n).sort((a, b) => a - b)
  assert.deepEqual(ns, Array.from({ length: 200 }, (_, i) => i + 1))
  assert.equal(raw, rows.length, 'each stored once')
})

test('the page is closed right after an event: the event is stored', async t => {
  const page = await open(t, 'close', { build: 'pulse.js' })
  await page.evaluate(() => pulse.track('last-words'))
  await page.close({ runBeforeUnload: true })
  const { rows } = await pulse.until('/__sdk/close', r => r.some(x => x.name == 'last-words'))
  assert.ok(rows.some(x => x.name == 'last-words'))
})
