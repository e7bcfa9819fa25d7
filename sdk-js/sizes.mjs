// Size report and budget of the built tracker files.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync, brotliCompressSync, constants } from 'node:zlib'

/** Gzipped size budgets in bytes: every byte is paid by every visitor of every site. */
export const BUDGETS = { 'pulse.js': 2048, 'pulse.full.js': 3072 }

/** sizes reads dist/ of dir and returns raw, gzip (level 9) and brotli (quality 11) sizes. */
export function sizes(dir) {
  return Object.entries(BUDGETS).map(([file, budget]) => {
    const b = readFileSync(join(dir, 'dist', file))
    return {
      file, budget, raw: b.length,
      gzip: gzipSync(b, { level: 9 }).length,
      brotli: brotliCompressSync(b, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
    }
  })
}
