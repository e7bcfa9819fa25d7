// The dashboard in headless Chromium against a real Pulse (`pulse dev`) and its ClickHouse
// (issue 9). Screenshots go to test/screenshots/ (gitignored): look at them.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { build } from 'esbuild'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Pulse, launch, login, shot } from './pulse.mjs'

const pulse = new Pulse()
let browser, signedIn // storage state of a signed-in browser

const DESKTOP = { viewport: { width: 1360, height: 900 } }
const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }

// Visitors seeded on top of the demo traffic: a user agent each (the visitor id hashes IP
// and user agent) and utm_source=seedtest on their first page, so the report can be narrowed
// to exactly them.
const UA = i => `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${120 + i}.0.0.0 Safari/537.36`
const SEED = [
  { ref: 'https://www.google.com/', pages: ['/', '/pricing', '/signup'] },
  { ref: 'https://www.google.com/', pages: ['/', '/docs'] },
  { ref: 'https://www.google.com/', pages: ['/blog/launch'] },
  { ref: 'https://news.ycombinator.com/', pages: ['/', '/pricing'] },
  { ref: 'https://news.ycombinator.com/', pages: ['/blog/launch', '/'] },
  { ref: '', pages: ['/', '/docs', '/docs/api'] },
  { ref: '', pages: ['/pricing'] },
  { ref: 'https://duckduckgo.com/', pages: ['/'] },
]
const SEEDED = SEED.length, SEEDED_PRICING = SEED.filter(v => v.pages.includes('/pricing')).length
// Each seeded page sends its engagement when left, as pulse.full.js does: visitor i had
// every page visible for ENGAGED_MS(i) and scrolled it to SCROLLED(i) percent.
const ENGAGED_MS = i => 5000 * (i + 1), SCROLLED = i => 10 * (i + 1)
// The seeded visitors' days (the demo site's time zone is UTC), two when the seeding crosses
// midnight: the views of them ask for these days, not for "today", which is another day once
// the tests have run past midnight.
let SEEDED_RANGE

before(async () => {
  // --demo: the demo site is busy (live visitors and 30 days of history), as after make run.
  await pulse.start({ args: ['--demo', '--demo-visits', '3000'] })
  browser = await launch()
  // Queries are quicker once the demo's history is written; the tests wait longer if it is not.
  await pulse.waitLog(/demo history written/, 120000).catch(e => console.log('  note:', e.message))
  const site = await pulse.api('GET', `/sites/${pulse.site}`)
  assert.equal(site.time_zone || 'UTC', 'UTC', 'the demo site reports in UTC days')
  const utcDay = (ms = Date.now()) => new Date(ms).toISOString().slice(0, 10)
  const firstDay = utcDay(Date.now() - 60000) // the day of the earliest time sent below
  // A visitor's events go in one request, so they are received at one moment: a visitor id
  // is keyed by the UTC day of receipt, and a visitor sent across midnight would be two.
  // Their times, a second apart and ending now, order them in their visit.
  for (const [i, v] of SEED.entries()) {
    const events = []
    let referrer = v.ref
    for (const [k, p] of v.pages.entries()) {
      const url = 'https://demo.localhost' + p + (k === 0 ? '?utm_source=seedtest' : '')
      events.push({ type: 'page', url, referrer }, { type: 'track', name: 'engagement', url, props: { ms: ENGAGED_MS(i), scroll: SCROLLED(i) } })
      referrer = 'https://demo.localhost' + p
    }
    if (v.pages.includes('/signup')) events.push({ type: 'track', name: 'Signup', url: 'https://demo.localhost/signup', props: { plan: 'pro' } })
    const end = Date.now()
    await pulse.send(events.map((e, k) => ({ ...e, ts: end - (events.length - 1 - k) * 1000 })), { 'User-Agent': UA(i) })
  }
  SEEDED_RANGE = `from=${firstDay}&to=${utcDay()}`
}, { timeout: 240000 })

after(async () => {
  await browser?.close()
  await pulse.stop()
})

async function page(t, opts = DESKTOP, { signedIn: withSession = true, dark = false } = {}) {
  if (withSession && !signedIn) { // this test runs alone: sign in once through the form
    const ctx = await browser.newContext()
    await login(await ctx.newPage(), pulse)
    signedIn = await ctx.storageState()
    await ctx.close()
  }
  const ctx = await browser.newContext({ ...opts, storageState: withSession ? signedIn : undefined, colorScheme: dark ? 'dark' : 'light' })
  t.after(() => ctx.close())
  const p = await ctx.newPage()
  p.on('pageerror', e => console.log('  [pageerror]', e.message))
  return p
}

/** noHorizontalScroll asserts the page is no wider than the viewport. */
async function noHorizontalScroll(p, what) {
  const [scroll, width] = await p.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth])
  assert.ok(scroll <= width, `${what}: the page is ${scroll}px wide in a ${width}px viewport`)
}

test('log in, see the site list, log out', async t => {
  const p = await page(t, DESKTOP, { signedIn: false })
  await p.goto(pulse.base + '/')
  await p.waitForURL(/\/login/)
  await p.getByLabel('Email').waitFor()
  await shot(p, 'login-light')
  await p.getByLabel('Email').fill(pulse.email)
  await p.getByLabel('Password').fill('not-the-password')
  await p.getByRole('button', { name: 'Log in' }).click()
  await p.getByText('Wrong email or password.').waitFor()

  await login(p, pulse)
  assert.equal(new URL(p.url()).pathname, '/')
  await p.getByRole('link', { name: /demo\.localhost/ }).waitFor()
  signedIn = await p.context().storageState()
  await shot(p, 'sites-light')

  await p.getByRole('button', { name: 'Account' }).click()
  await p.getByRole('button', { name: 'Log out' }).click()
  await p.waitForURL(/\/login/)
  await p.goto(pulse.base + `/sites/${pulse.site}/live`)
  await p.waitForURL(/\/login\?next=/, { timeout: 15000 })
  await login(p, pulse) // the session of the other tests stays valid: logout ends only this one
  signedIn = await p.context().storageState()
})

/**
 * trackerPage opens a visitor's page with the real tracker (/js/pulse.js) on Pulse's own
 * origin, which the demo site allows. The page comes from the real server (the dashboard's
 * HTML with its scripts kept out), because Chromium refuses a WebSocket to 127.0.0.1 from a
 * page that a test route made up (local network access checks).
 */
async function trackerPage(t) {
  // A person's browser: headless Chromium's user agent would be counted as a bot and kept out of the live view.
  const ctx = await browser.newContext({ userAgent: UA(40) })
  t.after(() => ctx.close())
  // A real visitor, not automation: the tracker declines to run when navigator.webdriver is true.
  await ctx.addInitScript(() => Object.defineProperty(Navigator.prototype, 'webdriver', { get: () => false }))
  await ctx.route(`${pulse.base}/assets/**`, route => route.abort())
  const p = await ctx.newPage()
  await p.goto(`${pulse.base}/__visitor/checkout`)
  await p.evaluate(key => {
    const s = document.createElement('script')
    s.src = '/js/pulse.js'
    s.dataset.site = key
    s.dataset.local = 'true'
    document.head.append(s)
  }, pulse.key)
  await p.waitForFunction(() => window.pulse && window.pulse.track)
  return p
}

test('the live view shows an event of the real tracker within a second', async t => {
  const p = await page(t)
  await p.goto(`${pulse.base}/sites/${pulse.site}/live`)
  await p.getByRole('status').filter({ hasText: 'Live' }).waitFor()
  const visitor = await trackerPage(t)
  await p.locator('.feed-item', { hasText: '/__visitor/checkout' }).first().waitFor({ timeout: 15000 }) // its pageview

  // A name the demo's own traffic never sends (it sends Purchase events), so the item is ours.
  // The time from the tracker's call to the feed item's insertion, both taken in the browser
  // (one clock for both pages), without the test driver's polling and round trips.
  const feed = p.locator('.feed-item', { hasText: 'Live check' })
  await p.evaluate(() => {
    window.__shown = new Promise(res => new MutationObserver((_, obs) => {
      if ([...document.querySelectorAll('.feed-item')].some(e => e.textContent.includes('Live check'))) { obs.disconnect(); res(Date.now()) }
    }).observe(document.body, { childList: true, subtree: true, characterData: true }))
  })
  const sent = await visitor.evaluate(() => { const t = Date.now(); pulse.track('Live check', { plan: 'pro' }); return t })
  await feed.first().waitFor({ timeout: 15000 })
  const took = await p.evaluate(() => window.__shown) - sent
  assert.ok(took < 1000, `the event reached the live feed after ${took} ms`)
  await p.locator('.top', { hasText: 'Custom events' }).getByText('Live check').waitFor()
  const online = Number(await p.getByTestId('online-now').locator('.stat-value').innerText())
  assert.ok(online >= 1, `online now counts the tracker's visitor (${online})`)

  // Live numbers change, the layout does not: every card keeps its place and size.
  const boxes = () => p.locator('.live .card, .live .stat').evaluateAll(els => els.map(e => {
    const r = e.getBoundingClientRect()
    return [Math.round(r.x), Math.round(r.y), Math.round(r.width), Math.round(r.height)].join(',')
  }))
  const layout = await boxes()
  const seq = await p.locator('.feed-item').first().innerText()
  for (let n = 0; n < 5; n++) await visitor.evaluate(n => pulse.track('Layout check', { n: String(n) }), n)
  await p.waitForFunction(s => document.querySelector('.feed-item')?.innerText !== s, seq)
  await p.waitForTimeout(1700) // several ticks; and the highlight of changed rows fades for the picture
  assert.deepEqual(await boxes(), layout, 'cards and stats kept their positions and sizes while live numbers updated')
  await shot(p, 'live-light', { fullPage: true })
  const dark = await page(t, DESKTOP, { dark: true })
  await dark.goto(`${pulse.base}/sites/${pulse.site}/live`)
  await dark.locator('.feed-item').first().waitFor() // the snapshot's feed holds the latest events, which may no longer include ours
  await shot(dark, 'live-dark', { fullPage: true })
})

/** sse reads the frames of GET /v1/live/sse as the demo user, calling onFrame for each until it returns true. */
async function sse(onFrame, ms = 20000) {
  const ac = new AbortController()
  const timer = setTimeout(() => ac.abort(), ms)
  try {
    const res = await fetch(`${pulse.base}/v1/live/sse?site=${pulse.site}`, { headers: { Authorization: 'Bearer ' + pulse.token }, signal: ac.signal })
    assert.equal(res.status, 200)
    const dec = new TextDecoder()
    let buf = ''
    for await (const chunk of res.body) {
      buf += dec.decode(chunk, { stream: true })
      let i
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const data = buf.slice(0, i).split('\n').find(l => l.startsWith('data: '))
        buf = buf.slice(i + 2)
        if (data && onFrame(JSON.parse(data.slice(6)))) return
      }
    }
  } finally {
    clearTimeout(timer)
    ac.abort()
  }
}

test("the live view's snapshot + deltas, applied as the dashboard applies them, equal a fresh snapshot of the real server", async t => {
  // The dashboard's own apply() (src/live.ts), bundled for Node.
  const dir = mkdtempSync(join(tmpdir(), 'pulse-live-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const out = await build({ entryPoints: [fileURLToPath(new URL('../src/live.ts', import.meta.url))], bundle: true, format: 'esm', write: false, logLevel: 'warning' })
  writeFileSync(join(dir, 'live.mjs'), out.outputFiles[0].text)
  const { apply } = await import(join(dir, 'live.mjs'))

  // waitUntil polls cond (a condition, not a guess of how long things take).
  const waitUntil = async (cond, what, ms = 60000) => {
    for (const end = Date.now() + ms; !cond(); await new Promise(r => setTimeout(r, 50))) {
      assert.ok(Date.now() < end, `${what} within ${ms} ms`)
    }
  }
  // Stream A: a snapshot, then the deltas of the demo's live traffic; the states it passes
  // through, by seq. A client that falls behind gets one catch-up delta over several states
  // (docs/protocol.md), so A may pass over a seq.
  let state, seq = -1, deltas = 0, done = false
  const states = new Map()
  const a = sse(f => {
    if (f.type === 'snapshot') { state = f.state; seq = f.seq } else {
      assert.equal(f.prev, seq, 'each delta follows the previous state')
      state = apply(state, f.changes)
      seq = f.seq
      deltas++
    }
    states.set(seq, JSON.parse(JSON.stringify(state)))
    return done
  }, 180000)
  await pulse.send({ type: 'track', name: 'Apply check', url: 'https://demo.localhost/apply' })
  await waitUntil(() => deltas >= 4 && JSON.stringify(state).includes('Apply check'), 'stream A applied deltas that hold the new event')
  // Stream B: fresh snapshots, compared with the state A reached at the same seq. Each is a
  // check of its own; the first whose seq A did not pass over decides.
  let compared = 0
  for (const end = Date.now() + 60000; !compared;) {
    let target
    await sse(f => { target = f; return true })
    await waitUntil(() => seq >= target.seq, `stream A reaches seq ${target.seq}`)
    const matched = states.get(target.seq)
    if (matched) {
      assert.deepEqual(matched, target.state, `the state at seq ${target.seq}`)
      compared++
    } else assert.ok(Date.now() < end, `stream A passed over the seq of every fresh snapshot for 60 s (last ${target.seq})`)
  }
  done = true
  await a
})

test('killing the live socket shows Reconnecting… and the view recovers by itself', async t => {
  const p = await page(t)
  let block = false, sockets = []
  await p.context().routeWebSocket(/\/v1\/live$/, ws => {
    if (block) { ws.close({ code: 1006, reason: 'test: network down' }); return }
    ws.connectToServer()
    sockets.push(ws)
  })
  await p.goto(`${pulse.base}/sites/${pulse.site}/live`)
  const status = p.locator('.live-status')
  await status.filter({ hasText: 'Live' }).waitFor()

  block = true
  for (const ws of sockets) await ws.close({ code: 1006, reason: 'test: killed' })
  await status.filter({ hasText: 'Reconnecting…' }).waitFor({ timeout: 15000 })
  await shot(p, 'live-reconnecting-light')
  await p.waitForTimeout(1500)
  assert.match(await status.innerText(), /Reconnecting…/, 'still reconnecting while the network is down')

  block = false
  await status.filter({ hasText: 'Live' }).waitFor({ timeout: 15000 })
  await pulse.send({ type: 'track', name: 'AfterReconnect', url: 'https://demo.localhost/back' })
  await p.locator('.feed-item', { hasText: 'AfterReconnect' }).waitFor({ timeout: 15000 })
})

test('the report renders with data; a row click adds a filter chip, changes the data and the URL', async t => {
  const p = await page(t)
  if (!await pulse.queryAPI()) {
    await p.goto(`${pulse.base}/sites/${pulse.site}/report`)
    await p.getByText('Historical reports are not available on this server yet.').waitFor()
    t.skip('POST /api/v1/query answers 404 on this build: the report waits for the query API (it shows a notice meanwhile)')
    return
  }
  const visitorsOf = pg => pg.getByRole('tab', { name: /Unique visitors/ }).locator('.stat-value')
  // waitVisitors waits until the number of unique visitors is n (exact) or at least n.
  const waitVisitors = async (pg, n, what, atLeast = false) => {
    const el = await visitorsOf(pg).elementHandle()
    await pg.waitForFunction(([el, n, atLeast]) => {
      const v = Number(el.dataset.value)
      return atLeast ? v >= n : v === n
    }, [el, n, atLeast], { timeout: 15000 })
      .catch(async () => assert.fail(`${what}: unique visitors show ${await visitorsOf(pg).getAttribute("data-value")}, want ${atLeast ? 'at least ' : ''}${n}`))
  }

  // The whole site: the demo's 30 days and today's traffic.
  await p.goto(`${pulse.base}/sites/${pulse.site}/report`)
  await waitVisitors(p, SEEDED, 'last 30 days', true)
  await p.locator('#panel-sources .barrow').first().waitFor()
  await p.locator('#panel-locations .barrow').first().waitFor()
  await p.locator('.main-chart canvas').waitFor()
  await p.waitForTimeout(500)
  await shot(p, 'report-light', { fullPage: true })

  // The range picker changes the range and the URL.
  await p.getByRole('button', { name: /Last 30 days/ }).click()
  await p.getByRole('button', { name: 'Last 7 days' }).click()
  await p.waitForURL(/range=7d/)
  await p.getByRole('button', { name: /Last 7 days/ }).waitFor()

  // Narrowed to the seeded visitors (their events reach ClickHouse within the batch interval).
  await p.goto(`${pulse.base}/sites/${pulse.site}/report?${SEEDED_RANGE}&f=is,visit:utm_source,seedtest`)
  await p.locator('.chip', { hasText: 'seedtest' }).waitFor()
  await waitVisitors(p, SEEDED, 'the seeded visitors')
  const pricing = p.locator('#panel-pages').getByRole('button', { name: /^\/pricing/ })
  await pricing.click()
  await p.waitForURL(/f=is%2Cevent%3Apage%2C%2Fpricing/)
  const chip = p.locator('.chip', { hasText: '/pricing' })
  await chip.waitFor()
  assert.match(await chip.innerText(), /Page\s+is\s+\/pricing/)
  assert.equal(await p.locator('.chip').count(), 2, 'both filters are chips')
  await waitVisitors(p, SEEDED_PRICING, 'seeded visitors who saw /pricing')

  // The URL reproduces the view.
  const again = await page(t)
  await again.goto(p.url())
  await again.locator('.chip', { hasText: '/pricing' }).waitFor()
  await waitVisitors(again, SEEDED_PRICING, 'the same URL in a new tab')

  await chip.getByRole('button', { name: /Remove filter/ }).click()
  await p.waitForURL(u => !decodeURIComponent(u.search).includes('/pricing'))
  await waitVisitors(p, SEEDED, 'after removing the chip')

  // Filtered by an event: the visitors and visits that did it, the conversions and the
  // conversion rate; the pages panel lists the pages those visits viewed.
  const signups = SEED.filter(v => v.pages.includes('/signup'))
  await p.goto(`${pulse.base}/sites/${pulse.site}/report?${SEEDED_RANGE}&f=is,visit:utm_source,seedtest&f=is,event:name,Signup`)
  await p.locator('.chip', { hasText: 'Signup' }).waitFor()
  await waitVisitors(p, signups.length, 'seeded visitors who signed up')
  const stat = name => p.getByRole('tab', { name }).locator('.stat-value[data-value]')
  await stat(/Total conversions/).waitFor()
  assert.equal(Number(await stat(/Total conversions/).getAttribute('data-value')), signups.length, 'one conversion each')
  assert.equal(Number(await stat(/Total visits/).getAttribute('data-value')), signups.length, 'the visits that converted')
  assert.equal(Number(await stat(/Conversion rate/).getAttribute('data-value')), Math.round(1000 * signups.length / SEEDED) / 10, 'of the seeded visitors')
  assert.equal(await p.getByRole('tab', { name: /Bounce rate|Total pageviews/ }).count(), 0, 'no pageviews or bounce rate of the event itself')
  const converted = new Set(signups.flatMap(v => v.pages))
  await p.locator('#panel-pages .barrow:not(.filler)').nth(converted.size - 1).waitFor()
  const pagesOfConverted = await panelRows(p.locator('#panel-pages'))
  assert.deepEqual(new Set(pagesOfConverted.map(r => r[0])), converted, 'the pages the converted visits viewed')
  assert.ok(pagesOfConverted.every(r => r[2] >= 1), `each with its views: ${JSON.stringify(pagesOfConverted)}`)
  const goalRow = p.locator('#panel-events .barrow:not(.filler)')
  await goalRow.first().waitFor()
  assert.deepEqual(await panelRows(p.locator('#panel-events')), [['Signup', signups.length, signups.length]], 'the goal with its conversions')
  await p.waitForTimeout(500) // the chart's animation, for the picture
  await shot(p, 'report-event-filter-light', { fullPage: true })

  const dark = await page(t, DESKTOP, { dark: true })
  await dark.goto(`${pulse.base}/sites/${pulse.site}/report?range=7d&compare=previous_period`)
  await dark.locator('#panel-sources .barrow').first().waitFor()
  await dark.locator('.main-chart canvas').waitFor()
  await dark.waitForTimeout(500)
  await shot(dark, 'report-dark', { fullPage: true })
})

/** siteDay is how the dashboard names the day of an RFC 3339 time of the API: "7 Nov" (with the year when it is not this one). */
const siteDay = rfc => {
  const [y, m, d] = rfc.slice(0, 10).split('-').map(Number)
  return new Date(Date.UTC(y, m - 1, d)).toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: y === new Date().getFullYear() ? undefined : 'numeric', timeZone: 'UTC' })
}

/** percents answers the percentages a text shows ("↑12.5%", "↓3%") as numbers. */
const percents = text => [...text.matchAll(/([↑↓]?)(\d[\d,.]*)%/g)].map(m => (m[1] === '↓' ? -1 : 1) * Number(m[2].replace(/,/g, '')))

// A change against a few visits can be large and right: in the first minutes of a day, today
// so far (with the live and the seeded visitors) against yesterday's first minutes. Where the
// earlier period has fewer visits than this, a percentage is not taken for absurd.
const FEW_VISITS = 50

/**
 * expectComparison asserts what a comparison shows, given the API's answer to the same
 * question: "no data before <first data>" and no percentage when the earlier period is not
 * covered by the site's data, else percentages that are not absurd when the earlier period
 * had at least FEW_VISITS visits (earlierVisits, from the API's totals).
 */
function expectComparison(text, meta, what, earlierVisits = Infinity) {
  if (meta.change_unavailable) {
    assert.equal(meta.change_unavailable, 'not_covered', `${what}: the API's reason`)
    assert.ok(meta.first_data, `${what}: the API names the first data`)
    assert.ok(text.includes(`no data before ${siteDay(meta.first_data)}`), `${what} says "no data before ${siteDay(meta.first_data)}": ${text}`)
    assert.deepEqual(percents(text), [], `${what} shows no percentage: ${text}`)
  } else {
    assert.ok(!/no data before/.test(text), `${what}: the earlier period is covered, yet: ${text}`)
    if (earlierVisits >= FEW_VISITS) for (const v of percents(text)) assert.ok(Math.abs(v) < 1000, `${what}: ${v}% is absurd against ${earlierVisits} visits (${text})`)
  }
  assert.ok(!/– vs 0/.test(text), `${what} shows "– vs 0": ${text}`)
}

test('comparisons compare like with like: no absurd percentage, "no data before …" where the earlier period has none, the part not over marked', async t => {
  if (!await pulse.queryAPI()) { t.skip('the query API is not on this build'); return }
  const p = await page(t)
  const query = spec => pulse.api('POST', '/query', { site_id: pulse.site, ...spec })

  // The site list: the card's 30 days against the 30 before. The demo has 30 days of history,
  // so the 30 days before hold at most a part of one day.
  const card = await query({ metrics: ['visitors'], date_range: '30d', dimensions: ['time:day'], include: { time_labels: true, totals: true, comparison: 'previous_period' } })
  assert.equal(card.meta.comparison.change_unavailable, 'not_covered', `the demo's 30 days before are not covered: ${JSON.stringify(card.meta.comparison)}`)
  assert.ok(card.meta.incomplete_until, 'the last 30 days include today, which is not over')
  await p.goto(pulse.base + '/')
  const demo = p.locator('.site-card', { hasText: 'demo.localhost' })
  await demo.locator('.site-card-foot .change, .site-card-foot .change-note').first().waitFor({ timeout: 15000 })
  expectComparison(await demo.locator('.site-card-foot').innerText(), card.meta.comparison, 'the site card')
  assert.equal(await demo.locator('.spark[data-partial="true"]').count(), 1, "the sparkline's last day (today) is drawn as so far")
  await p.waitForTimeout(300)
  await shot(p, 'compare-sites-light')

  // The report compared with the previous period: this month, the last 30 days, and today
  // (whose yesterday the demo's history covers).
  const TOP = ['visitors', 'visits', 'pageviews', 'views_per_visit', 'bounce_rate', 'visit_duration']
  for (const [range, name] of [['month', 'this-month'], ['30d', '30d'], ['today', 'today']]) {
    const api = await query({ metrics: TOP, date_range: range, include: { totals: true, comparison: 'previous_period' } })
    await p.goto(`${pulse.base}/sites/${pulse.site}/report?range=${range}&compare=previous_period`)
    await p.locator('.report-stats .stat-sub .change, .report-stats .stat-sub .change-note').first().waitFor({ timeout: 15000 })
    const subs = await p.locator('.report-stats .stat-sub').allInnerTexts()
    assert.equal(subs.length, TOP.length)
    const earlierVisits = api.totals.comparison.metrics[TOP.indexOf('visits')]
    for (const [i, sub] of subs.entries()) expectComparison(sub, api.meta.comparison, `${range}: ${TOP[i]}`, earlierVisits)
    const caption = p.locator('.compare-caption')
    await caption.waitFor({ timeout: 15000 })
    // The same range as the API's answer to the test (whose end is now, to the second, moved back a period).
    const [from, to] = (await caption.getAttribute('data-compare-range')).split('/')
    assert.equal(from, api.meta.comparison.date_range[0], `${range}: the caption's comparison starts where the API's does`)
    assert.ok(Math.abs(Date.parse(to) - Date.parse(api.meta.comparison.date_range[1])) < 120000, `${range}: the caption's comparison ends at ${to}, the API's at ${api.meta.comparison.date_range[1]}`)
    expectComparison(await caption.innerText(), api.meta.comparison, `${range}: the caption`, earlierVisits)
    if (range === 'today') assert.equal(api.meta.comparison.change_unavailable, undefined, 'yesterday is in the demo history: today has changes')
    // The bucket that holds now is marked: dashed, "so far".
    await p.locator('.main-chart canvas').waitFor()
    await p.locator('.main-chart .chart[data-partial]').waitFor({ timeout: 15000 })
    assert.match(await p.locator('.main-chart .so-far-key').innerText(), /so far/)
    await p.waitForTimeout(500)
    await shot(p, `compare-report-${name}-light`, { fullPage: true })
  }
  const dark = await page(t, PHONE, { dark: true })
  await dark.goto(`${pulse.base}/sites/${pulse.site}/report?range=month&compare=previous_period`)
  await dark.locator('.report-stats .stat-sub .change, .report-stats .stat-sub .change-note').first().waitFor({ timeout: 15000 })
  await dark.locator('.main-chart .chart[data-partial]').waitFor({ timeout: 15000 })
  await dark.waitForTimeout(500)
  await noHorizontalScroll(dark, 'the compared report on a phone (dark)')
  await shot(dark, 'compare-report-this-month-phone-dark')

  // The report filtered by one of the demo's custom events.
  await p.goto(`${pulse.base}/sites/${pulse.site}/report?range=7d&f=is,event:name,Signup`)
  await p.locator('.chip', { hasText: 'Signup' }).waitFor()
  await p.locator('.report-stats .stat-value[data-value]').first().waitFor({ timeout: 15000 })
  await p.locator('.main-chart canvas').waitFor()
  await p.waitForTimeout(500)
  await shot(p, 'report-event-signup-light', { fullPage: true })

  // Retention: the cells of today are counts so far, hatched, not shaded as low retention;
  // each cohort has at most one, its last.
  await p.goto(`${pulse.base}/sites/${pulse.site}/retention?period=day&range=30d`)
  await p.locator('table.cohorts tbody tr').first().waitFor({ timeout: 15000 })
  const rows = await p.locator('table.cohorts tbody tr').evaluateAll(trs => trs.map(tr => {
    const cells = [...tr.querySelectorAll('td.num.heat')]
    return { partial: cells.map((c, i) => c.dataset.partial ? i : -1).filter(i => i >= 0), last: cells.length - 1, shaded: cells.filter(c => c.dataset.partial && c.style.getPropertyValue('--heat')).length }
  }))
  const marked = rows.filter(r => r.partial.length)
  assert.ok(marked.length >= 1, 'the cells of today are marked')
  for (const r of marked) {
    assert.deepEqual(r.partial, [r.last], 'a cohort\'s one marked cell is its last')
    assert.equal(r.shaded, 0, 'a marked cell is not shaded as a rate')
  }
  assert.match(await p.locator('.cohorts-key').innerText(), /This day is not over/)
  await shot(p, 'compare-retention-light', { fullPage: true })
})

/** parseCSV reads a CSV text (RFC 4180, as Go's encoding/csv writes it) into rows of fields. */
function parseCSV(text) {
  const rows = []
  let row = [], field = '', quoted = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++ } else if (c === '"') quoted = false
      else field += c
    } else if (c === '"') quoted = true
    else if (c === ',') { row.push(field); field = '' }
    else if (c === '\n') { row.push(field.replace(/\r$/, '')); rows.push(row); row = []; field = '' }
    else field += c
  }
  if (field || row.length) { row.push(field); rows.push(row) }
  // The API writes a value that a spreadsheet would read as a formula with a leading '.
  return rows.map(r => r.map(v => v.replace(/^'(?=[=+\-@\t\r])/, '')))
}

/** download presses a download button (with the keyboard when keyboard is true) and answers the file's name and rows. */
async function download(p, button, { keyboard = false } = {}) {
  const wait = p.waitForEvent('download', { timeout: 15000 })
  if (keyboard) { await button.focus(); await p.keyboard.press('Enter') } else await button.click()
  const dl = await wait
  assert.equal(await dl.failure(), null, 'the download completed')
  return { name: dl.suggestedFilename(), rows: parseCSV(readFileSync(await dl.path(), 'utf8')) }
}

/** panelRows answers the rows a breakdown panel shows: [value, visitors, second number or null]. */
const panelRows = panel => panel.locator('.barrow:not(.filler)').evaluateAll(els => els.map(e => [
  e.querySelector('.bar-label').title, Number(e.querySelector('.bar-n').dataset.value),
  e.querySelector('.bar-n2') ? Number(e.querySelector('.bar-n2').dataset.value) : null,
]))

/** watchCSP collects the page's Content-Security-Policy violations. */
const watchCSP = p => p.addInitScript(() => {
  window.__csp = []
  document.addEventListener('securitypolicyviolation', e => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`))
})

test('a report panel and the chart download their whole query as CSV, in the shared view too; errors are shown', async t => {
  if (!await pulse.queryAPI()) { t.skip('the query API is not on this build'); return }
  const PANEL_ROWS = 9 // rows of a breakdown panel (report.tsx)
  const MAX_LIMIT = 10000 // the largest limit of the query API (MaxLimit, docs/query-api.md)
  const p = await page(t)
  await watchCSP(p)
  const downloads = [], asked = []
  p.on('download', d => downloads.push(d.suggestedFilename()))
  p.on('request', r => { if (r.url().endsWith('/api/v1/query') && /text\/csv/.test(r.headers().accept || '')) asked.push(JSON.parse(r.postData())) })

  // Days before yesterday hold only the demo's history, which its live traffic does not
  // change, so the panel's numbers and the file's are of the same data (in any time zone).
  const day = n => new Date(Date.now() - n * 864e5).toISOString().slice(0, 10)
  const from = day(30), to = day(2)
  await p.goto(`${pulse.base}/sites/${pulse.site}/report?from=${from}&to=${to}&sources=visit:source&metric=pageviews`)
  const fileName = dim => new RegExp(`^pulse-demo\\.localhost-${from}-${to}-${dim}\\.csv$`)

  // Sources, from the keyboard: the file has the panel's dimension and metric, the panel's
  // rows with the same numbers at its top, and the rows the panel has no room for.
  const sources = p.locator('#panel-sources')
  await sources.locator('.barrow:not(.filler)').nth(PANEL_ROWS - 1).waitFor({ timeout: 15000 })
  const shown = await panelRows(sources)
  const csv = await download(p, sources.getByRole('button', { name: 'Download Sources as CSV' }), { keyboard: true })
  assert.match(csv.name, fileName('visit-source'))
  assert.equal(asked.at(-1).limit, MAX_LIMIT, 'the file asks for as many rows as the API answers')
  assert.deepEqual(csv.rows[0], ['visit:source', 'visitors'])
  const body = csv.rows.slice(1)
  assert.ok(body.length > PANEL_ROWS, `the file has all ${body.length} sources, not only the panel's ${PANEL_ROWS}`)
  const inFile = new Map(body.map(r => [r[0], Number(r[1])]))
  assert.equal(inFile.size, body.length, 'each source once')
  for (const [value, visitors] of shown) assert.equal(inFile.get(value), visitors, `visitors of source ${value}: file and panel`)
  assert.deepEqual(body.slice(0, PANEL_ROWS).map(r => Number(r[1])), shown.map(r => r[1]), 'the file starts with the panel\'s rows, by visitors')

  // Pages: two metrics, both in the file.
  const pagesPanel = p.locator('#panel-pages')
  await pagesPanel.locator('.barrow:not(.filler)').nth(PANEL_ROWS - 1).waitFor()
  const pageRows = await panelRows(pagesPanel)
  const pagesCSV = await download(p, pagesPanel.getByRole('button', { name: 'Download Pages as CSV' }))
  assert.match(pagesCSV.name, fileName('event-page'))
  assert.deepEqual(pagesCSV.rows[0], ['event:page', 'visitors', 'pageviews', 'time_on_page', 'scroll_depth'])
  assert.ok(pagesCSV.rows.length - 1 > PANEL_ROWS, `the file has all ${pagesCSV.rows.length - 1} pages`)
  const pagesInFile = new Map(pagesCSV.rows.slice(1).map(r => [r[0], [Number(r[1]), Number(r[2])]]))
  for (const [value, visitors, views] of pageRows) assert.deepEqual(pagesInFile.get(value), [visitors, views], `visitors and views of ${value}: file and panel`)

  // The chart: one row per day of the range, and its pageviews add up to the report's total.
  const total = Number(await p.getByRole('tab', { name: /Total pageviews/ }).locator('.stat-value[data-value]').getAttribute('data-value'))
  const chart = await download(p, p.getByRole('button', { name: 'Download Total pageviews by day as CSV' }))
  assert.match(chart.name, fileName('time-day'))
  assert.deepEqual(chart.rows[0], ['time:day', 'pageviews'])
  const days = []
  for (let d = Date.parse(from); d <= Date.parse(to); d += 864e5) days.push(new Date(d).toISOString().slice(0, 10))
  assert.deepEqual(chart.rows.slice(1).map(r => r[0]), days, 'a row for each day of the range')
  assert.equal(chart.rows.slice(1).reduce((s, r) => s + Number(r[1]), 0), total, 'the days add up to the total pageviews')
  assert.equal(await p.getByText('The CSV holds the first').count(), 0, 'no file reached the row limit')

  // The report's filters and range are the file's: narrowed to the seeded visitors of their days,
  // the pages are exactly theirs.
  const want = new Map(), engaged = new Map()
  for (const [i, v] of SEED.entries()) for (const [k, path] of v.pages.entries()) {
    const [vis, views] = want.get(path) || [0, 0]
    want.set(path, [vis + (v.pages.indexOf(path) === k ? 1 : 0), views + 1])
    // A page visit (one visit's engagement on one page): its time and deepest scroll.
    if (v.pages.indexOf(path) === k) engaged.set(path, [...(engaged.get(path) || []), [ENGAGED_MS(i) / 1000, SCROLLED(i)]])
  }
  const mean = xs => Math.round(xs.reduce((a, b) => a + b, 0) / xs.length)
  const wantEngaged = new Map([...engaged].map(([path, pvs]) => [path, [mean(pvs.map(x => x[0])), mean(pvs.map(x => x[1]))]]))
  // (Their events reach ClickHouse within the batch interval; the report does not poll.)
  const seededURL = `${pulse.base}/sites/${pulse.site}/report?${SEEDED_RANGE}&f=is,visit:utm_source,seedtest`
  for (let end = Date.now() + 15000; ; await p.waitForTimeout(500)) {
    await p.goto(seededURL)
    const el = p.locator('.report-stats .stat-value[data-value]').first()
    await el.waitFor()
    if (Number(await el.getAttribute('data-value')) === SEEDED) break
    assert.ok(Date.now() < end, `the seeded visitors reach the report: ${await el.getAttribute('data-value')} of ${SEEDED}`)
  }
  await pagesPanel.locator('.barrow:not(.filler)').nth(want.size - 1).waitFor()
  const seeded = await download(p, pagesPanel.getByRole('button', { name: 'Download Pages as CSV' }))
  assert.deepEqual(seeded.rows[0], ['event:page', 'visitors', 'pageviews', 'time_on_page', 'scroll_depth'])
  assert.deepEqual(new Map(seeded.rows.slice(1).map(r => [r[0], [Number(r[1]), Number(r[2])]])), want, 'the pages of the seeded visitors, as sent')
  assert.deepEqual(new Map(seeded.rows.slice(1).map(r => [r[0], [Number(r[3]), Number(r[4])]])), wantEngaged, 'time on page and scroll depth of the seeded visitors\' engagement')
  // The panel shows them per page, as the file has them.
  const shownEngaged = await pagesPanel.locator('.barrow:not(.filler)').evaluateAll(els => els.map(e => [
    e.querySelector('.bar-label').title,
    [Number(e.querySelector('[data-metric=time_on_page]').dataset.value), Number(e.querySelector('[data-metric=scroll_depth]').dataset.value)],
  ]))
  assert.deepEqual(new Map(shownEngaged), wantEngaged, 'the pages panel shows time on page and scroll depth')

  // A refused query is said in the card, not swallowed: the API's own 429 (the limiter is
  // drained to get one), answered to the CSV request and to its one retry.
  const answers = await Promise.all(Array.from({ length: 40 }, async () => {
    const res = await fetch(pulse.base + '/api/v1/query', {
      method: 'POST', headers: { Authorization: 'Bearer ' + pulse.token },
      body: JSON.stringify({ site_id: pulse.site, metrics: ['visitors'], date_range: 'today' }),
    })
    return { status: res.status, headers: { 'Retry-After': res.headers.get('Retry-After') || '', 'Content-Type': 'application/json' }, body: await res.text() }
  }))
  const refused = answers.find(r => r.status === 429)
  assert.ok(refused, `the query API rate-limits a caller: ${answers.map(r => r.status)}`)
  let refusedCSV = 0
  await p.route('**/api/v1/query', route => {
    if (!/text\/csv/.test(route.request().headers().accept || '')) return route.continue()
    refusedCSV++
    return route.fulfill(refused)
  })
  const before = downloads.length
  await pagesPanel.getByRole('button', { name: 'Download Pages as CSV' }).click()
  const alert = pagesPanel.getByRole('alert')
  await alert.waitFor({ timeout: 10000 })
  const said = await alert.innerText()
  assert.ok(said.startsWith('Could not download Pages as CSV: ' + JSON.parse(refused.body).error), `the card says why: ${said}`)
  assert.equal(refusedCSV, 2, 'the CSV request and its one retry')
  assert.equal(downloads.length, before, 'no file when the query was refused')
  await p.unroute('**/api/v1/query')
  assert.deepEqual(await p.evaluate(() => window.__csp), [], 'no Content-Security-Policy violations')

  // The shared view downloads with its link's token, and says so when the link was revoked.
  const { share_link: link, token } = await pulse.api('POST', `/sites/${pulse.site}/share-links`, { name: 'CSV export', expires_in: '24h' })
  const anon = await page(t, DESKTOP, { signedIn: false })
  await watchCSP(anon)
  await anon.goto(`${pulse.base}/share/${pulse.site}/report?from=${from}&to=${to}#${token}`)
  const channels = anon.locator('#panel-sources')
  await channels.locator('.barrow:not(.filler)').first().waitFor({ timeout: 15000 })
  await anon.locator('.report-stats .stat-value[data-value]').first().waitFor({ timeout: 15000 }) // every query of the page answered
  const channelRows = await panelRows(channels)
  const shared = await download(anon, channels.getByRole('button', { name: 'Download Channels as CSV' }))
  assert.match(shared.name, fileName('visit-channel'))
  assert.deepEqual(shared.rows[0], ['visit:channel', 'visitors'])
  const channelsInFile = new Map(shared.rows.slice(1).map(r => [r[0], Number(r[1])]))
  for (const [value, visitors] of channelRows) assert.equal(channelsInFile.get(value), visitors, `visitors of channel ${value}: file and shared panel`)
  assert.deepEqual(await anon.evaluate(() => window.__csp), [], 'no Content-Security-Policy violations in the shared view')
  await pulse.api('DELETE', `/sites/${pulse.site}/share-links/${link.id}`)
  await channels.getByRole('button', { name: 'Download Channels as CSV' }).click()
  await channels.getByRole('alert').filter({ hasText: 'Could not download Channels as CSV: this share link is no longer valid' }).waitFor({ timeout: 10000 })
  await shot(anon, 'share-report-csv-error-light')
})

test('site settings create a share link that opens without login and shows only its site', async t => {
  const other = await pulse.api('POST', `/orgs/${pulse.org}/sites`, { domain: 'other-shop.example', time_zone: 'UTC' })
  const p = await page(t)
  await p.goto(`${pulse.base}/sites/${pulse.site}/settings`)
  await p.getByRole('heading', { name: 'Tracking snippet' }).waitFor()
  assert.match(await p.getByLabel('tracking snippet', { exact: true }).innerText(), new RegExp(`data-site="${pulse.key}"`))
  await p.getByText(/Receiving events/).waitFor()
  await p.getByLabel('Share link name').fill('Investors')
  await p.getByRole('button', { name: 'Create link' }).click()
  const link = await p.getByLabel('share link', { exact: true }).innerText()
  assert.match(link, new RegExp(`^${pulse.base}/share/${pulse.site}#.+`))
  await p.locator('.list-row', { hasText: 'Investors' }).waitFor()
  await p.evaluate(() => window.scrollTo(0, 0))
  await shot(p, 'settings-light', { fullPage: true })
  const dark = await page(t, DESKTOP, { dark: true })
  await dark.goto(`${pulse.base}/sites/${pulse.site}/settings`)
  await dark.locator('.list-row', { hasText: 'Investors' }).waitFor()
  await shot(dark, 'settings-dark', { fullPage: true })

  const anon = await page(t, DESKTOP, { signedIn: false })
  await anon.goto(link)
  await anon.locator('.site-title', { hasText: 'demo.localhost' }).waitFor()
  await anon.locator('.live-status', { hasText: 'Live' }).waitFor()
  await anon.getByText('Shared · read-only').waitFor()
  const html = await anon.content()
  assert.ok(!html.includes('other-shop.example'), 'the other site of the org is not shown')
  assert.equal(await anon.getByRole('button', { name: 'Account' }).count(), 0, 'no account menu')
  assert.equal(await anon.getByRole('link', { name: 'Settings' }).count(), 0, 'no settings')
  await anon.getByRole('link', { name: 'Report' }).click()
  await anon.waitForURL(new RegExp(`/share/${pulse.site}/report#`))
  await anon.locator('.report-stats .stat-value[data-value]').first().waitFor()
  await anon.locator('#panel-sources .barrow').first().waitFor()
  await shot(anon, 'share-report-light', { fullPage: true })

  // The same token reads nothing else: not the other site, not the org.
  const token = link.split('#')[1]
  const res = await anon.evaluate(async ([other, org, token]) => {
    const h = { Authorization: 'Bearer ' + token }
    return [(await fetch(`/api/v1/sites/${other}`, { headers: h })).status, (await fetch(`/api/v1/orgs/${org}/sites`, { headers: h })).status]
  }, [other.id, pulse.org, token])
  assert.deepEqual(res.map(s => s >= 400), [true, true], `other site and org answered ${res}`)
  await anon.goto(`${pulse.base}/share/${other.id}#${token}`)
  await anon.getByText('This share link is not valid').waitFor()
})

test('a site whose stored time zone the database does not know reports in UTC and says so', async t => {
  const p = await page(t)
  if (!await pulse.queryAPI()) { t.skip('the query API is not on this build'); return }
  // The API refuses such a zone now; a site can hold one saved before that check existed.
  const site = await pulse.api('POST', `/orgs/${pulse.org}/sites`, { domain: 'zone-check.example', time_zone: 'Europe/Berlin' })
  pulse.clickhouse("INSERT INTO auth_sites (id, org_id, domain, generation, public_key, allowed_origins, time_zone, identity_secret, created_at, deleted, version, honor_dnt, retention_days)" +
    ` SELECT id, org_id, domain, generation, public_key, allowed_origins, 'right/UTC', identity_secret, created_at, deleted, version + 1, honor_dnt, retention_days FROM auth_sites FINAL WHERE id = '${site.id}'`)
  // Every node reads the sites again within its refresh interval.
  for (const end = Date.now() + 30000; (await pulse.api('GET', `/sites/${site.id}`)).time_zone !== 'right/UTC'; await p.waitForTimeout(250)) {
    assert.ok(Date.now() < end, 'the stored time zone never reached the API')
  }
  const warning = /time zone "right\/UTC" is not known to the database; reports are in UTC/
  for (const view of ['report?range=7d', 'funnels?range=7d&step=page:/&step=page:/pricing', 'retention']) {
    await p.goto(`${pulse.base}/sites/${site.id}/${view}`)
    const shown = p.locator('.answer-warning')
    await shown.first().waitFor({ timeout: 15000 })
    assert.match(await shown.first().innerText(), warning, `${view}: the warning`)
  }
  await p.goto(`${pulse.base}/sites/${site.id}/report?range=7d`)
  await p.locator('.answer-warning').waitFor()
  await p.getByText(/by day · UTC/).waitFor({ timeout: 15000 })
})

test('funnels and retention render from the query API', async t => {
  const p = await page(t)
  if (!await pulse.queryAPI()) { t.skip('the query API is not on this build'); return }
  await p.goto(`${pulse.base}/sites/${pulse.site}/funnels?range=7d&step=page:/&step=page:/pricing&step=page:/signup`)
  const steps = p.locator('.funnel-step')
  await steps.nth(2).waitFor({ timeout: 15000 })
  const visitors = await steps.locator('.funnel-head .strong').allInnerTexts()
  const n = visitors.map(v => Number(v.replace(/,/g, '')))
  assert.equal(n.length, 3)
  assert.ok(n[0] >= n[1] && n[1] >= n[2] && n[0] > 0, `each step has at most the visitors of the one before: ${visitors}`)
  await shot(p, 'funnels-light', { fullPage: true })

  // The demo's visitors who reach its app are signed-in users (docs/demo.md): a cohort a day,
  // all of it seen on its first day, some of it again later.
  await p.goto(`${pulse.base}/sites/${pulse.site}/retention?period=day&range=30d`)
  const cohorts = p.locator('table.cohorts tbody tr')
  await cohorts.first().waitFor({ timeout: 15000 })
  const table = await cohorts.evaluateAll(trs => trs.map(tr => [...tr.querySelectorAll('td')].map(td => td.textContent)))
  assert.ok(table.length >= 20, `${table.length} daily cohorts in 30 days of demo history`)
  const [users, day0, ...later] = table[0]
  assert.ok(Number(users.replace(/,/g, '')) > 0, `the first cohort has ${users} users`)
  assert.equal(day0, '100%')
  assert.ok(later.some(c => /^[1-9]\d*%$/.test(c)), `some of the first cohort come back: ${later.join(' ')}`)
  await shot(p, 'retention-light', { fullPage: true })
})

test('keyboard: a report row is reachable with Tab and filters with Enter; menus open and close from the keyboard', async t => {
  const p = await page(t)
  if (!await pulse.queryAPI()) { t.skip('the query API is not on this build'); return }
  await p.goto(`${pulse.base}/sites/${pulse.site}/report?${SEEDED_RANGE}&f=is,visit:utm_source,seedtest`)
  await p.locator('#panel-pages .barrow-btn').first().waitFor()
  let found = ''
  for (let i = 0; i < 80 && !found; i++) {
    await p.keyboard.press('Tab')
    found = await p.evaluate(() => document.activeElement?.closest('#panel-pages') && document.activeElement.classList.contains('barrow-btn') ? document.activeElement.textContent : '')
  }
  assert.ok(found, 'Tab reaches the rows of the pages panel')
  await p.keyboard.press('Enter')
  await p.waitForFunction(() => document.querySelectorAll('.chip').length === 2)
  assert.match(decodeURIComponent(p.url()), /f=is,event:page,\//)

  await p.getByRole('button', { name: 'Switch site' }).focus()
  await p.keyboard.press('Enter')
  await p.getByRole('menu').waitFor()
  await p.waitForFunction(() => !!document.activeElement?.closest('.menu-list'), null, { timeout: 10000 })
    .catch(() => assert.fail('focus moves into the open menu'))
  await p.keyboard.press('Escape')
  await p.getByRole('menu').waitFor({ state: 'detached' })
})

test('an invitation made in organization settings lets a new member in', async t => {
  const p = await page(t)
  await p.goto(`${pulse.base}/orgs/${pulse.org}/settings`)
  await p.getByLabel('Email to invite').fill('new.colleague@example.com')
  await p.getByRole('button', { name: 'Invite', exact: true }).click()
  const link = await p.getByLabel('invitation link', { exact: true }).innerText()
  assert.match(link, new RegExp(`^${pulse.base}/invite#inv_`))

  const anon = await page(t, DESKTOP, { signedIn: false })
  await anon.goto(link)
  await anon.getByLabel('Name').fill('New Colleague')
  await anon.getByLabel('Password').fill('a-long-enough-password')
  await anon.getByRole('button', { name: 'Accept invitation' }).click()
  await anon.getByRole('heading', { name: "You're in" }).waitFor()
  await anon.getByRole('button', { name: 'Log in' }).click()
  await anon.getByLabel('Email').fill('new.colleague@example.com')
  await anon.getByLabel('Password').fill('a-long-enough-password')
  await anon.getByRole('button', { name: 'Log in' }).click()
  await anon.getByRole('link', { name: /demo\.localhost/ }).waitFor()
  assert.equal(await anon.getByRole('button', { name: '+ Add a site' }).count(), 0, 'a viewer cannot add sites')

  await p.reload()
  await p.locator('.member', { hasText: 'new.colleague@example.com' }).waitFor()
})

test('organization settings list the members with their emails and the usage', async t => {
  const p = await page(t)
  await p.goto(`${pulse.base}/orgs/${pulse.org}/settings`)
  await p.locator('.member', { hasText: pulse.email }).waitFor()
  await p.getByText('Events this month').waitFor()
  // Where this month's events come from: the API's sources, read before and after the page
  // (the demo keeps sending, so counts only grow between the three reads).
  const usage = () => pulse.api('GET', `/orgs/${pulse.org}/usage`)
  const before = (await usage()).sources
  await p.reload()
  const rows = p.locator('.usage-sources tbody tr')
  await rows.first().waitFor({ timeout: 15000 })
  const shown = (await rows.evaluateAll(trs => trs.map(tr => [...tr.querySelectorAll('td')].map(td => td.innerText))))
  const after = (await usage()).sources
  assert.ok(before.length > 0, 'the demo site has events this month')
  const key = r => r[0] + ' ' + r[1]
  const site = (await pulse.api('GET', `/sites/${pulse.site}`)).domain
  const count = text => Number(text.replace(/[^\d]/g, ''))
  for (const row of shown) {
    const b = before.find(s => key([site, s.hostname]) === key(row)), a = after.find(s => key([site, s.hostname]) === key(row))
    assert.ok(b && a, `the page lists ${key(row)}, which the API does not: ${JSON.stringify(before)}`)
    assert.ok(b.events <= count(row[2]) && count(row[2]) <= a.events, `${key(row)}: the page shows ${row[2]} events, the API ${b.events} before and ${a.events} after`)
  }
  assert.equal(shown.length, before.length, 'the page lists every source the API answers')
  await shot(p, 'org-light', { fullPage: true })
})

test('phone-sized screens have no horizontal scroll', async t => {
  const p = await page(t, PHONE)
  const paths = ['/', `/sites/${pulse.site}/live`, `/sites/${pulse.site}/report`, `/sites/${pulse.site}/funnels`,
    `/sites/${pulse.site}/retention`, `/sites/${pulse.site}/settings`, `/orgs/${pulse.org}/settings`]
  for (const path of paths) {
    await p.goto(pulse.base + path)
    await p.locator('.container').first().waitFor()
    await p.waitForLoadState('networkidle') // the page's data has arrived and is laid out
    await noHorizontalScroll(p, path)
    if (path.endsWith('/settings') && path.startsWith('/sites')) await shot(p, 'settings-phone-light', { fullPage: true })
  }
  await p.goto(`${pulse.base}/sites/${pulse.site}/live`)
  await p.locator('.feed-item').first().waitFor()
  await shot(p, 'live-phone-light', { fullPage: true })
  const d = await page(t, PHONE, { dark: true })
  await d.goto(`${pulse.base}/sites/${pulse.site}/report?range=today`)
  await d.locator('.report-stats .stat-value[data-value]').first().waitFor()
  await d.waitForLoadState('networkidle')
  await noHorizontalScroll(d, 'report (dark)')
  await shot(d, 'report-phone-dark', { fullPage: true })
  const login = await page(t, PHONE, { signedIn: false })
  await login.goto(pulse.base + '/login')
  await noHorizontalScroll(login, '/login')
})

test('the theme toggle switches between system, light and dark and is kept', async t => {
  const p = await page(t)
  await p.goto(pulse.base + '/')
  const theme = () => p.evaluate(() => document.documentElement.dataset.theme)
  assert.equal(await theme(), 'light')
  await p.getByRole('button', { name: /System theme/ }).click()
  assert.equal(await theme(), 'light')
  await p.getByRole('button', { name: /Light theme/ }).click()
  assert.equal(await theme(), 'dark')
  await p.reload()
  assert.equal(await theme(), 'dark', 'the choice survives a reload')
  await p.getByRole('button', { name: /Dark theme/ }).click()
  assert.equal(await theme(), 'light', 'back to the system preference')
})
