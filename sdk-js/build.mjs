// Builds dist/pulse.js (default), dist/pulse.full.js (automatic captures) and dist/pulse.mjs
// (npm) with esbuild, then prints their sizes. Usage: node build.mjs
import { build } from 'esbuild'
import { fileURLToPath } from 'node:url'
import { sizes } from './sizes.mjs'

const dir = fileURLToPath(new URL('.', import.meta.url))
const common = { bundle: true, absWorkingDir: dir, target: 'es2020', legalComments: 'none', logLevel: 'warning' }

export async function buildAll() {
  await Promise.all([
    build({ ...common, entryPoints: ['src/script.js'], outfile: 'dist/pulse.js', format: 'iife', minify: true, define: { FULL: 'false' } }),
    build({ ...common, entryPoints: ['src/script.js'], outfile: 'dist/pulse.full.js', format: 'iife', minify: true, define: { FULL: 'true' } }),
    // npm: the options of the full build (hash, exclude, cross-tab adoption), no automatic captures.
    build({ ...common, entryPoints: ['src/esm.js'], outfile: 'dist/pulse.mjs', format: 'esm', minifySyntax: true, define: { FULL: 'true' } }),
  ])
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildAll()
  for (const s of sizes(dir)) console.log(`${s.file.padEnd(14)} ${String(s.raw).padStart(6)} B  gzip ${String(s.gzip).padStart(5)} B  brotli ${String(s.brotli).padStart(5)} B  budget ${s.budget} B`)
}
