// Opens /v1/live from a page in Debian's headless Chromium, authenticates
// with a token, subscribes, and sends pings as fast as the socket takes them
// until the server closes it; prints each connection's close code and reason
// as JSON. A browser fails a connection with 1006 when the server resets it,
// so the code it reports shows whether the server closed in order.
// PAGE_URL (the dashboard's origin), WS_URL, SITE and TOKENS (one per
// connection, comma-separated) come from the Go test.
import { chromium } from 'playwright-core'

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
})
try {
  const page = await browser.newPage()
  await page.goto(process.env.PAGE_URL)
  const results = []
  for (const token of process.env.TOKENS.split(',')) {
    results.push(await page.evaluate(({ url, site, token }) => new Promise(done => {
      const ws = new WebSocket(url)
      let id = 0, sent = 0
      // Keeps 256 KiB queued in the browser, so the server always has frames to read.
      const pump = () => {
        if (ws.readyState != WebSocket.OPEN) return
        while (ws.bufferedAmount < 256 * 1024) ws.send(JSON.stringify({ type: 'ping', id: ++id })), sent++
        setTimeout(pump, 0)
      }
      ws.onopen = () => {
        ws.send(JSON.stringify({ type: 'auth', token }))
        ws.send(JSON.stringify({ type: 'subscribe', site, views: ['online'] }))
        pump()
      }
      ws.onclose = e => done({ code: e.code, reason: e.reason, sent })
      setTimeout(() => { done({ code: 0, reason: 'no close within 20 s', sent }); ws.close() }, 20000)
    }), { url: process.env.WS_URL, site: process.env.SITE, token }))
  }
  console.log(JSON.stringify(results))
} finally {
  await browser.close()
}
