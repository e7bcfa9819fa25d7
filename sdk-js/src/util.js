// Small pure helpers of the tracker, exported for the unit tests.
import { BACKOFF_BASE, BACKOFF_MAX } from './limits.js'

export { BACKOFF_BASE, BACKOFF_MAX }

export const str = JSON.stringify
/** bytes is the length of s in UTF-8, as the server counts it. */
export const bytes = s => new Blob([s]).size

/**
 * backoff is the delay before reconnect attempt n (0-based): "full jitter", a uniformly
 * random delay between 0 and min(BACKOFF_MAX, BACKOFF_BASE·2ⁿ), so that the visitors of
 * a restarted server do not all come back at once.
 */
export const backoff = (n, rnd = Math.random) => rnd() * Math.min(BACKOFF_MAX, BACKOFF_BASE * 2 ** n)

/**
 * uuid returns a random (version 4) UUID. Event ids must be unique, not secret (a client may
 * send any id it likes), and every engine seeds Math.random per page from the system's
 * random source; crypto.randomUUID needs a secure context, and crypto.getRandomValues costs
 * 25 bytes more gzipped.
 */
export const uuid = () =>
  ([1e7] + -1e3 + -4e3 + -8e3 + -1e11).replace(/[018]/g, c => (c ^ Math.random() * 16 >> c / 4).toString(16))

/**
 * matcher (full build) turns "/admin/*, /preview" into a RegExp matching whole paths;
 * * matches any characters, including /. It returns undefined for an empty list.
 */
export const matcher = list =>
  list && RegExp('^(' + list.replace(/[.+?^${}()[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/ *, */g, '|') + ')$')
