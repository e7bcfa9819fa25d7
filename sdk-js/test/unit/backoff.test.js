import { test } from 'node:test'
import assert from 'node:assert/strict'
import { backoff, BACKOFF_BASE, BACKOFF_MAX, matcher } from '../../src/util.js'

test('backoff: full jitter up to 0.5 s doubling, capped at 30 s', () => {
  const top = n => backoff(n, () => 1)
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7, 20].map(top), [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000])
  assert.equal(backoff(5, () => 0), 0, 'full jitter reaches zero')
  assert.equal(BACKOFF_BASE, 500)
  assert.equal(BACKOFF_MAX, 30000)
  // Real randomness: spread over the whole interval, never beyond it.
  const d = Array.from({ length: 2000 }, () => backoff(3))
  assert.ok(d.every(x => x >= 0 && x <= 4000))
  assert.ok(Math.min(...d) < 400 && Math.max(...d) > 3600, 'delays are spread, not clustered')
})

test('matcher: comma-separated globs match whole paths', () => {
  const m = matcher('/admin/*, /preview,/a.b')
  assert.ok(m.test('/admin/users/1'))
  assert.ok(m.test('/preview'))
  assert.ok(m.test('/a.b'))
  assert.ok(!m.test('/axb'), 'a dot is literal')
  assert.ok(!m.test('/preview/2'))
  assert.ok(!m.test('/shop/admin/x'))
  assert.equal(matcher(''), '')
  assert.equal(matcher(undefined), undefined)
})
