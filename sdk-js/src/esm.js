// Entry of the npm build (dist/pulse.mjs): init(options) starts the tracker; calls made
// before init are queued and replayed. On a server (no window) everything is a no-op.
import { start } from './core.js'
import { matcher } from './util.js'

let api
const pending = []

/** init starts tracking with the options of index.d.ts; later calls do nothing. */
export function init(options) {
  if (api || typeof window == 'undefined') return
  api = start(window, Object.assign({ host: location.origin }, options, { exclude: matcher(options.exclude) }))
  pending.forEach(([m, a]) => api[m](...a))
}
const call = m => (...a) => api ? api[m](...a) : pending.push([m, a])
export const track = call('track')
export const page = call('page')
export const identify = call('identify')
export const optOut = call('optOut')
export const optIn = call('optIn')
