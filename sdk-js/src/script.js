// Entry of the <script> builds (dist/pulse.js, dist/pulse.full.js): options come from the
// script tag's data-* attributes; calls queued by the inline stub are replayed.
import { start } from './core.js'
import { matcher } from './util.js'
import { auto } from './auto.js'

try {
  const w = window, s = document.currentScript, d = s.dataset, o = {}
  // "false" turns an option off; any other value ("true" too) is kept as given.
  for (const k in d) o[k] = d[k] != 'false' && d[k]
  o.host = o.host || new URL(s.src).origin
  if (FULL) o.exclude = matcher(o.exclude)
  const api = start(w, o, FULL && auto), stub = w.pulse
  // pulse('track', 'signup', {plan: 'pro'}) and pulse.track('signup', {plan: 'pro'}) both work.
  const pulse = (m, ...a) => api[m] && api[m](...a)
  w.pulse = Object.assign(pulse, api)
  stub && stub.q && stub.q.forEach(a => pulse(...a))
} catch (e) {
  console.warn('Pulse:', e)
}
