// Builds the tracker and holds it to its size budget; prints gzip and brotli sizes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { buildAll } from '../../build.mjs'
import { sizes } from '../../sizes.mjs'

test('size: each build within its gzip budget', async t => {
  await buildAll()
  for (const s of sizes(fileURLToPath(new URL('../..', import.meta.url)))) {
    t.diagnostic(`${s.file}: ${s.raw} B raw, ${s.gzip} B gzip, ${s.brotli} B brotli (budget ${s.budget} B gzip)`)
    assert.ok(s.gzip <= s.budget, `${s.file} is ${s.gzip} B gzipped, over its budget of ${s.budget} B`)
  }
})
