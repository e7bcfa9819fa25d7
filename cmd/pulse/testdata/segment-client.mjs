// Sends events to Pulse with Segment's own Node library, unmodified but for
// the host: PULSE_URL and WRITE_KEY come from the Go test that runs this.
import { Analytics } from '@segment/analytics-node'

const analytics = new Analytics({ writeKey: process.env.WRITE_KEY, host: process.env.PULSE_URL, maxEventsInBatch: 10 })
analytics.on('error', (err) => { console.error('segment error', err); process.exitCode = 1 })
analytics.track({
  userId: 'u-42',
  event: 'Order Completed',
  properties: { revenue: 19.5, currency: 'EUR' },
  context: { page: { url: 'https://demo.localhost/checkout' }, ip: '81.2.69.142', userAgent: 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0' },
})
analytics.page({ anonymousId: 'anon-1', name: 'Pricing', properties: { url: 'https://demo.localhost/pricing' } })
analytics.identify({ userId: 'u-42', traits: { plan: 'pro' } })
await analytics.closeAndFlush({ timeout: 10000 })
