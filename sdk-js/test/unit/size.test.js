// Builds the tracker and holds it to its size budget; prints gzip and brotli sizes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { buildAll } from '../../build.mjs'
import { sizes, BUDGETS } from '../../sizes.mjs'

// RATCHET holds builds that are still over their budget (issue 6 is open for pulse.js) to
// their current size, so that they can only shrink.
const RATCHET = { 'pulse.js': 2560 }

test('size: each build within its gzip budget', async t => {
  await buildAll()
  for (const s of sizes(fileURLToPath(new URL('../..', import.meta.url)))) {
    t.diagnostic(`${s.file}: ${s.raw} B raw, ${s.gzip} B gzip, ${s.brotli} B brotli (budget ${s.budget} B gzip)`)
    const over = RATCHET[s.file]
    if (over) {
      assert.ok(s.gzip <= over, `${s.file} is ${s.gzip} B gzipped, grown beyond its ratchet of ${over} B`)
      await t.test(`${s.file} within ${s.budget} B`, { todo: `${s.file} is ${s.gzip} B gzipped, over its budget` }, () => {
        assert.ok(s.gzip <= BUDGETS[s.file], `${s.file} is ${s.gzip} B gzipped, over its budget of ${s.budget} B`)
      })
    } else {
      assert.ok(s.gzip <= s.budget, `${s.file} is ${s.gzip} B gzipped, over its budget of ${s.budget} B`)
    }
  }
})
