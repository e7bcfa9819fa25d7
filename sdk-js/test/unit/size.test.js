// Builds the tracker and holds each <script> build to its gzip budget; reports gzip and brotli sizes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { buildAll } from '../../build.mjs'
import { sizes, BUDGETS } from '../../sizes.mjs'

test('size: each build within its gzip budget', async t => {
  // 2.0 KiB for the default build, which every visitor of every site loads, 3.0 KiB for the
  // full one; raising them is a decision, not a side effect of a change.
  assert.deepEqual(BUDGETS, { 'pulse.js': 2048, 'pulse.full.js': 3072 })
  await buildAll()
  for (const s of sizes(fileURLToPath(new URL('../..', import.meta.url)))) {
    await t.test(`${s.file}: ${s.gzip} B gzip (budget ${s.budget} B), ${s.brotli} B brotli, ${s.raw} B raw`, () => {
      assert.ok(s.gzip <= s.budget, `${s.file} is ${s.gzip} B gzipped, over its budget of ${s.budget} B by ${s.gzip - s.budget} B`)
    })
  }
})
