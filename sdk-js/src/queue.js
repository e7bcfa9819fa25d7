// The persistent queue of events not yet acknowledged by the server.
import { MAX_EVENTS, MAX_BYTES, MAX_AGE, ORPHAN } from './limits.js'
import { str } from './util.js'

export { MAX_EVENTS, MAX_BYTES, MAX_AGE, ORPHAN }

/**
 * createQueue keeps this page's unacknowledged events (each with its time ts) in memory
 * (q: [{e: event, s: seq of the frame that carried it, unset before}]; an adopted entry
 * keeps the o of its stored form, which means nothing in memory) and mirrors them to
 * localStorage[key] = {q: [{o: page, e}], d: dropped}, so that events of a closed or
 * crashed page are sent by a later page of the origin:
 * - default build: the first sync adopts every stored event of other pages;
 * - full build: each sync adopts the stored events that their page released (o = 0,
 *   sync(0) on pagehide) or that are older than ORPHAN ms.
 * Two open tabs may then both send an event; the server stores it once (by id).
 * Without storage (private mode, quota, disabled) the queue lives in memory only; the
 * caps hold either way.
 */
export function createQueue(w, key, me) {
  let synced
  const Q = {
    q: [],
    sync(own = me) {
      let s, now = Date.now(), all, d
      try { s = JSON.parse(w.localStorage[key]) } catch (e) {} // none yet, damaged, or no storage
      s = s || {}
      // Stored events of other pages: adopted, or kept for them. Times are the events' ts.
      all = (s.q || []).filter(x => x.o != me && !Q.q.some(y => y.e.id == x.e.id) &&
        !((FULL ? own && (!x.o || x.e.ts < now - ORPHAN) : !synced) && Q.q.push(x)))
      all = all.concat(Q.q.map(x => ({ o: own, e: x.e }))).filter(x => x.e.ts > now - MAX_AGE).sort((a, b) => a.e.ts - b.e.ts)
      d = s.d | 0
      while (all.length > MAX_EVENTS || str(all).length > MAX_BYTES) d++, all.shift()
      Q.q = Q.q.filter(x => all.some(y => y.e == x.e))
      synced = 1
      try { w.localStorage[key] = str({ q: all, d }) } catch (e) {} // full, or no storage
    },
    add(e) { Q.q.push({ e }); Q.sync() },
    /** ack drops the events of every frame with 0 < seq ≤ n. */
    ack(n) { Q.q = Q.q.filter(x => !x.s || x.s > n); Q.sync() },
    /** drop drops the given entries. */
    drop(list) { Q.q = Q.q.filter(x => !list.includes(x)); Q.sync() },
  }
  return Q
}
