// The tracker in headless Chromium against a real Pulse and ClickHouse (issue 6).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { chromium } from 'playwright-core'
import { Pulse, tracker, CHROMIUM } from './pulse.js'
import { buildAll } from '../../build.mjs'

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

// open serves a test page with the snippet from Pulse's own origin (allowed by the demo
// site) under /__sdk/<name>/ and returns the page. The visitor is a real browser, not a bot:
// navigator.webdriver is hidden; data-local lets the tracker run on 127.0.0.1.
async function open(t, name, { build = 'pulse.full.js', context, body = '' } = {}) {
  const ctx = context || await browser.newContext()
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
  await page.goto(`${pulse.base}/__sdk/${name}/`)
  await page.waitForFunction(() => window.pulse && window.pulse.track)
  return page
}

const names = rows => rows.map(r => r.type + ':' + r.name)

test('SPA navigation gives the right pageviews; a queued call, a custom event and an outbound click arrive', async t => {
  const page = await open(t, 'spa')
  await page.evaluate(() => {
    history.pushState({}, '', '/__sdk/spa/pricing')
    history.replaceState({}, '', '/__sdk/spa/pricing?tab=2')
    history.pushState({}, '', '/__sdk/spa/signup')
    pulse.track('signup', { plan: 'pro', seats: 3 })
  })
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
  assert.deepEqual(engaged, ['/__sdk/spa/', '/__sdk/spa/pricing', '/__sdk/spa/signup'], 'each page sends its engagement when left')
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
  const ctx = await browser.newContext()
  t.after(() => ctx.close())
  const page = await open(t, 'offline', { build: 'pulse.js', context: ctx })
  await page.waitForTimeout(300)
  await ctx.setOffline(true)
  for (let n = 1; n <= 5; n++) await page.evaluate(n => pulse.track('offline', { n: String(n) }), n)
  await page.waitForTimeout(2000)
  await ctx.setOffline(false)
  const { rows, raw } = await pulse.until('/__sdk/offline', r => r.filter(x => x.name == 'offline').length >= 5)
  assert.deepEqual(rows.filter(r => r.name == 'offline').map(r => r.props.n).sort(), ['1', '2', '3', '4', '5'])
  assert.ok(raw >= rows.length)
})

test('WebSocket blocked: the HTTP fallback delivers', async t => {
  const ctx = await browser.newContext()
  t.after(() => ctx.close())
  let attempts = 0
  await ctx.routeWebSocket(/\/v1\/ingest/, ws => { attempts++; ws.close({ code: 1006 }) })
  const page = await open(t, 'blocked', { build: 'pulse.js', context: ctx })
  await page.evaluate(() => pulse.track('blocked', { via: 'http' }))
  const { rows } = await pulse.until('/__sdk/blocked', r => r.some(x => x.name == 'blocked'))
  assert.deepEqual(names(rows).sort(), ['page:pageview', 'track:blocked', 'track:early'])
  assert.ok(attempts >= 2, `the tracker tried the WebSocket first (${attempts} attempts)`)
})

test('the page is closed right after an event: the event is stored', async t => {
  const page = await open(t, 'close', { build: 'pulse.js' })
  await page.evaluate(() => pulse.track('last-words'))
  await page.close({ runBeforeUnload: true })
  const { rows } = await pulse.until('/__sdk/close', r => r.some(x => x.name == 'last-words'))
  assert.ok(rows.some(x => x.name == 'last-words'))
})
