// Opens ingest WebSockets from a page in Debian's headless Chromium and sends
// frames as fast as the socket takes them until the server closes it, then
// prints each connection's close code and reason as JSON. A browser fails a
// connection with 1006 when the server resets it, so the code it reports
// shows whether the server closed in order. PAGE_URL (an allowed origin),
// WS_URL, KIND ("pings" or "events") and RUNS come from the Go test.
import { chromium } from 'playwright-core'

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
})
try {
  const page = await browser.newPage()
  await page.goto(process.env.PAGE_URL)
  const results = []
  for (let i = 0; i < Number(process.env.RUNS); i++) {
    results.push(await page.evaluate(({ url, kind }) => new Promise(done => {
      const ws = new WebSocket(url)
      let seq = 0, sent = 0
      const frame = () => kind == 'events'
        ? { type: 'events', seq: ++seq, events: [{ id: crypto.randomUUID(), type: 'page', url: location.origin + '/p/' + seq }] }
        : { type: 'ping', id: ++seq }
      // Keeps 256 KiB queued in the browser, so the server always has frames to read.
      const pump = () => {
        if (ws.readyState != WebSocket.OPEN) return
        while (ws.bufferedAmount < 256 * 1024) ws.send(JSON.stringify(frame())), sent++
        setTimeout(pump, 0)
      }
      ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', v: 1 }))
      ws.onmessage = m => { if (JSON.parse(m.data).type == 'welcome') pump() }
      ws.onclose = e => done({ code: e.code, reason: e.reason, sent })
      setTimeout(() => { done({ code: 0, reason: 'no close within 20 s', sent }); ws.close() }, 20000)
    }), { url: process.env.WS_URL, kind: process.env.KIND }))
  }
  console.log(JSON.stringify(results))
} finally {
  await browser.close()
}
