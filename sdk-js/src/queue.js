// The persistent queue of events not yet acknowledged by the server.

/** At most MAX_EVENTS events and MAX_BYTES bytes of JSON are kept; beyond, the oldest are dropped and counted. */
export const MAX_EVENTS = 1000
export const MAX_BYTES = 262144
/** An event older than MAX_AGE ms (2 days) is dropped from the queue; the server refuses events older than 7 days. */
export const MAX_AGE = 1728e5
/** A page's claim on its stored events lasts LEASE ms unless renewed; afterwards another page of the origin adopts them. */
export const LEASE = 3e4

/**
 * createQueue keeps this page's unacknowledged events in memory, mirrored to
 * localStorage[key] as {l: {page: leaseUntil}, q: [{o: page, t: time, e: event}], d: dropped}
 * so that events of a closed or crashed page are sent by the next page of the origin.
 * Without storage (private mode, quota, disabled) it keeps them in memory only.
 * Entries in memory are {e, t, s, b}: event, enqueue time, frame seq (0: not sent), bytes.
 */
export function createQueue(w, key, me) {
  const q = []
  const load = () => {
    try { return JSON.parse(w.localStorage.getItem(key)) || {} } catch (e) { return {} }
  }
  // sync writes our entries (owned by `owner`) over the stored ones, applying the caps and the age limit.
  const sync = (owner = me) => {
    const s = load(), now = Date.now(), l = s.l || {}, ids = {}
    l[me] = owner ? now + LEASE : 0
    for (const p in l) if (l[p] < now) delete l[p]
    q.forEach(x => ids[x.e.id] = 1)
    let all = (s.q || []).filter(x => x.o != me && !ids[x.e.id])
      .concat(q.map(x => ({ o: owner, t: x.t, e: x.e })))
      .filter(x => x.t > now - MAX_AGE)
      .sort((a, b) => a.t - b.t)
    let bytes = 0, d = s.d || 0
    all.forEach(x => bytes += JSON.stringify(x).length)
    while (all.length > MAX_EVENTS || bytes > MAX_BYTES) {
      const x = all.shift()
      bytes -= JSON.stringify(x).length
      d++
      drop(y => y.e.id == x.e.id)
    }
    try {
      w.localStorage.setItem(key, JSON.stringify({ l, q: all, d }))
    } catch (e) {}
  }
  const drop = f => { for (let i = q.length; i--;) if (f(q[i])) q.splice(i, 1) }
  return {
    q,
    add(e) { q.push({ e, t: Date.now(), s: 0 }); sync() },
    /** remove drops the events of every frame with 0 < seq ≤ n, or the given entries. */
    remove(n) { drop(typeof n == 'number' ? x => x.s && x.s <= n : x => n.includes(x)); sync() },
    /** adopt takes over stored events whose page is gone (lease over or released). */
    adopt() {
      const s = load(), now = Date.now(), l = s.l || {}
      for (const x of s.q || []) {
        if (x.o != me && !(l[x.o] > now) && x.t > now - MAX_AGE && !q.some(y => y.e.id == x.e.id)) q.push({ e: x.e, t: x.t, s: 0 })
      }
      q.sort((a, b) => a.t - b.t)
      sync()
    },
    sync,
  }
}
