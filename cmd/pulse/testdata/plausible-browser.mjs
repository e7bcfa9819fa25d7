// Loads a page that uses Plausible's own tracker from npm, unmodified but for
// the endpoint, in Debian's headless Chromium, and waits until Pulse answered
// its pageview and custom event. PAGE_URL comes from the Go test. Playwright
// gives the browser a fresh temporary profile.
import { chromium } from 'playwright-core'

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--no-first-run', '--disable-sync', '--disable-blink-features=AutomationControlled'],
})
try {
  const page = await browser.newPage()
  const answers = []
  page.on('response', (r) => { if (r.url().endsWith('/api/event')) answers.push(r.status()) })
  page.on('console', (m) => console.log('page:', m.text()))
  await page.goto(process.env.PAGE_URL)
  const deadline = Date.now() + 15000
  while (answers.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  console.log('answers', JSON.stringify(answers))
  if (answers.length < 2 || answers.some((s) => s !== 202)) process.exitCode = 1
} finally {
  await browser.close()
}
