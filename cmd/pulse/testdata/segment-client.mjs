// Drives Segment's own Node library, unmodified but for its host, through the
// calls of the JSON file CALLS ([{"method": "track", "args": {…}}, …]), and
// prints as one JSON line every request body the library sent and every error
// it reported (its "error" event), with the messageId it concerns.
// PULSE_URL and WRITE_KEY come from the Go test; BATCH is the library's
// maxEventsInBatch; CLOCK_SKEW_MS sets this process's clock off by that much,
// as a device's clock may be, before the library is loaded.
import { readFileSync } from 'node:fs'

const skew = Number(process.env.CLOCK_SKEW_MS || 0)
if (skew) {
  const RealDate = Date
  globalThis.Date = class extends RealDate {
    constructor (...args) {
      if (args.length === 0) super(RealDate.now() + skew)
      else super(...args)
    }

    static now () { return RealDate.now() + skew }
  }
}
const { Analytics } = await import('@segment/analytics-node')

const calls = JSON.parse(readFileSync(process.env.CALLS, 'utf8'))
const analytics = new Analytics({
  writeKey: process.env.WRITE_KEY,
  host: process.env.PULSE_URL,
  maxEventsInBatch: Number(process.env.BATCH || 20),
  flushInterval: 60000, // closeAndFlush sends; no timer decides what shares a batch
})
const sent = []
const errors = []
analytics.on('http_request', (r) => sent.push(JSON.parse(r.body)))
analytics.on('error', (err) => errors.push({
  code: err.code,
  reason: String(err.reason?.message ?? err.reason),
  messageId: err.ctx?.event?.messageId ?? null,
}))
for (const { method, args } of calls) analytics[method](args)
await analytics.closeAndFlush({ timeout: 20000 })
console.log(JSON.stringify({ sent, errors }))
