// Builds dist/pulse.js (default), dist/pulse.full.js (automatic captures) and dist/pulse.mjs
// (npm) with esbuild, then prints their sizes. Usage: node build.mjs
//
// The two <script> builds are bundled by esbuild (FULL defined, internal property names
// mangled) and minified by terser, whose output is about 3% smaller gzipped than esbuild's
// own minifier (it names the variables of every scope alike, which gzip rewards): 65 bytes
// of the default build's 2048.
import { build } from 'esbuild'
import { minify } from 'terser'
import { writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { sizes } from './sizes.mjs'

const dir = fileURLToPath(new URL('.', import.meta.url))
const common = { bundle: true, absWorkingDir: dir, target: 'es2020', legalComments: 'none', logLevel: 'warning' }
// MANGLE names the queue's methods, which no page or server sees.
const MANGLE = /^(sync|add|ack|drop)$/

async function script(full, outfile) {
  const r = await build({
    ...common, entryPoints: ['src/script.js'], format: 'iife', write: false,
    define: { FULL: String(full) }, mangleProps: MANGLE, minifySyntax: true,
  })
  const m = await minify(r.outputFiles[0].text, { ecma: 2020, compress: { passes: 2 }, mangle: true })
  await writeFile(join(dir, outfile), m.code)
}

export async function buildAll() {
  await Promise.all([
    script(false, 'dist/pulse.js'),
    script(true, 'dist/pulse.full.js'),
    // npm: the options of the full build (hash, exclude, dnt, cross-tab adoption, busy,
    // retry_after), no automatic captures; minified by the site's own build.
    build({ ...common, entryPoints: ['src/esm.js'], outfile: 'dist/pulse.mjs', format: 'esm', minifySyntax: true, define: { FULL: 'true' } }),
  ])
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildAll()
  for (const s of sizes(dir)) console.log(`${s.file.padEnd(14)} ${String(s.raw).padStart(6)} B  gzip ${String(s.gzip).padStart(5)} B  brotli ${String(s.brotli).padStart(5)} B  budget ${s.budget} B`)
}
