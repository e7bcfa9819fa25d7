// Loads a page that uses Plausible's own tracker from npm, unmodified but for
// the endpoint, in Debian's headless Chromium, then moves the page to another
// hash route so that the tracker sends the engagement of the route left and
// the next pageview. Prints as one JSON line every event body the tracker
// sent with Pulse's answer, and what the page's track callbacks received.
// (Closing the page may send one more engagement event, after the print.)
// PAGE_URL and EVENTS (how many event requests the page makes in all) come
// from the Go test. Playwright gives the browser a fresh temporary profile.
import { chromium } from 'playwright-core'

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--no-first-run', '--disable-sync', '--disable-blink-features=AutomationControlled'],
})
try {
  const page = await browser.newPage()
  const events = []
  let arrived = () => {}
  page.on('response', async (r) => {
    const req = r.request()
    if (!req.url().endsWith('/api/event') || req.method() !== 'POST') return
    events.push({ body: JSON.parse(req.postData()), status: r.status(), answer: await r.text() })
    arrived()
  })
  const all = (n) => new Promise((resolve) => {
    arrived = () => { if (events.length >= n) resolve() }
    arrived()
  })
  page.on('console', (m) => console.error('page:', m.text()))
  await page.goto(process.env.PAGE_URL)
  // The pageview and the three custom events; their callbacks ran once answered.
  await page.waitForFunction(() => window.results && window.results.length === 3, null, { timeout: 15000 })
  await page.evaluate(() => { location.hash = '#/settings' })
  let timer
  await Promise.race([all(Number(process.env.EVENTS)), new Promise((resolve) => { timer = setTimeout(resolve, 15000) })])
  clearTimeout(timer)
  const results = await page.evaluate(() => window.results)
  console.log(JSON.stringify({ events, results }))
} finally {
  await browser.close()
}
