// Small pure helpers of the tracker, exported for the unit tests.
import { BACKOFF_BASE, BACKOFF_MAX, OPT_OUT } from './limits.js'

export { BACKOFF_BASE, BACKOFF_MAX, OPT_OUT }

export const str = JSON.stringify

/**
 * backoff is the delay before reconnect attempt n (0-based): "full jitter", a uniformly
 * random delay between 0 and min(BACKOFF_MAX, BACKOFF_BASE·2ⁿ), so that the visitors of
 * a restarted server do not all come back at once.
 */
export const backoff = (n, rnd = Math.random) => rnd() * Math.min(BACKOFF_MAX, BACKOFF_BASE * 2 ** n)

/** uuid returns a random (version 4) UUID; crypto.randomUUID needs a secure context, this does not. */
export const uuid = () =>
  ([1e7] + -1e3 + -4e3 + -8e3 + -1e11).replace(/[018]/g, c =>
    (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16))

/**
 * matcher (full build) turns "/admin/*, /preview" into a RegExp matching whole paths;
 * * matches any characters, including /. It returns undefined for an empty list.
 */
export const matcher = list =>
  list && RegExp('^(' + list.replace(/[.+?^${}()[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/ *, */g, '|') + ')$')

/**
 * decline says why the tracker must not track this page, or '' when it may.
 * o.local allows localhost; o.dnt honours Do Not Track and Global Privacy Control;
 * in the full build o.exclude (a matcher) names paths not to track.
 */
export const decline = (w, o) => {
  const n = w.navigator, l = w.location
  let s
  try { s = w.localStorage.getItem(OPT_OUT) } catch (e) {}
  return !o.site ? 'no data-site'
    : s ? 'opted out'
    : !o.local && /^(localhost|127\.|\[::1\]$|$)/.test(l.hostname) ? 'localhost'
    : n.webdriver ? 'webdriver'
    : o.dnt && (n.doNotTrack == 1 || n.globalPrivacyControl) ? 'DNT/GPC'
    : FULL && o.exclude && o.exclude.test(l.pathname) ? 'excluded path'
    : ''
}
