// Type-checks index.d.ts: test/types/usage.ts, compiled by TypeScript (tsc --noEmit), uses
// the npm API as docs/sdk.md shows it and expects errors (@ts-expect-error) for misuse, so
// that both a broken and a too lax declaration file fail.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc')
const project = fileURLToPath(new URL('../types/tsconfig.json', import.meta.url))

test('types: index.d.ts accepts the documented usage and refuses misuse (tsc --noEmit)', async () => {
  const out = await new Promise(res => execFile(process.execPath, [tsc, '-p', project], (err, stdout, stderr) => res({ err, text: stdout + stderr })))
  assert.equal(out.err, null, 'tsc found errors:\n' + out.text)
})
