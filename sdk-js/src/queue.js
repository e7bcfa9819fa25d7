// The persistent queue of events not yet acknowledged by the server.

/** At most MAX_EVENTS events and MAX_BYTES bytes of JSON are kept; beyond, the oldest are dropped and counted. */
export const MAX_EVENTS = 1000
export const MAX_BYTES = 262144
/** An event older than MAX_AGE ms (2 days) leaves the queue unsent; the server refuses events older than 7 days. */
export const MAX_AGE = 1728e5
/** A stored event another page has not got acknowledged within ORPHAN ms is adopted by this page too. */
export const ORPHAN = 3e4

const str = JSON.stringify

/**
 * createQueue keeps this page's unacknowledged events in memory (q: [{e: event, t: time,
 * s: seq of the frame that carried it, 0 when unsent}]) and mirrors them to
 * localStorage[key] = {q: [{o: page, t, e}], d: dropped}, so that events of a closed or
 * crashed page are sent by a later page of the origin. Each sync adopts the stored events
 * that their page released (o = 0, on pagehide) or that are older than ORPHAN ms: two
 * open tabs may then both send an event, and the server stores it once (by id).
 * Without storage (private mode, quota, disabled) the queue lives in memory only; the
 * caps hold either way. sync(0) releases this page's events.
 */
export function createQueue(w, key, me) {
  const q = []
  let store
  try { store = w.localStorage } catch (e) {}
  const sync = (own = me) => {
    let s = {}, all = [], now = Date.now(), d
    try { s = JSON.parse(store.getItem(key)) || s } catch (e) {}
    d = s.d || 0
    for (const x of s.q || []) {
      if (x.o != me && !q.some(y => y.e.id == x.e.id)) {
        own && (!x.o || x.t < now - ORPHAN) ? q.push({ e: x.e, t: x.t, s: 0 }) : all.push(x)
      }
    }
    all = all.concat(q.map(x => ({ o: own, t: x.t, e: x.e }))).filter(x => x.t > now - MAX_AGE).sort((a, b) => a.t - b.t)
    while (all.length > MAX_EVENTS || str(all).length > MAX_BYTES) d++, all.shift()
    remove(x => !all.some(y => y.e == x.e))
    try { store.setItem(key, str({ q: all, d })) } catch (e) {}
  }
  const remove = f => { for (let i = q.length; i--;) f(q[i]) && q.splice(i, 1) }
  return {
    q,
    sync,
    add(e) { q.push({ e, t: Date.now(), s: 0 }); sync() },
    /** ack drops the events of every frame with 0 < seq ≤ n. */
    ack(n) { remove(x => x.s && x.s <= n); sync() },
    /** drop drops the given entries. */
    drop(list) { remove(x => list.includes(x)); sync() },
  }
}
