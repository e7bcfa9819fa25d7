// Builds the dashboard into dist/ (embedded in the pulse binary by package web):
// dist/assets/app-HASH.js and .css, the fonts, and dist/index.html that loads them.
// Usage: node dashboard/web/build.mjs [--check]   (--check also type-checks with tsc)
import { build } from 'esbuild'
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const dir = fileURLToPath(new URL('.', import.meta.url))
const dist = join(dir, 'dist')

// The favicon: the pulse mark, inline so the page needs no extra request.
const icon = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="8" fill="#4f46e5"/><path d="M5 17h5l3-7 5 13 3-6h6" fill="none" stroke="#fff" stroke-width="2.6" stroke-linecap="round" stroke-linejoin="round"/></svg>`

const page = (js, css) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<title>Pulse</title>
<link rel="icon" href="data:image/svg+xml,${encodeURIComponent(icon)}">
<link rel="stylesheet" href="/assets/${css}">
<script type="module" src="/assets/${js}"></script>
</head>
<body>
<div id="app"></div>
<noscript>Pulse's dashboard needs JavaScript.</noscript>
</body>
</html>
`

export async function buildDashboard({ check = false } = {}) {
  if (check) {
    try {
      execFileSync(join(dir, '../../node_modules/.bin/tsc'), ['-p', join(dir, 'tsconfig.json')], { stdio: 'inherit' })
    } catch {
      throw new Error('dashboard: type check failed (tsc output above)')
    }
  }
  rmSync(join(dist, 'assets'), { recursive: true, force: true })
  rmSync(join(dist, 'index.html'), { force: true })
  mkdirSync(join(dist, 'assets'), { recursive: true })
  const out = await build({
    absWorkingDir: dir,
    entryPoints: { app: 'src/main.tsx' },
    bundle: true,
    format: 'esm',
    target: 'es2020',
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    loader: { '.woff2': 'file', '.woff': 'file' },
    outdir: 'dist/assets',
    entryNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    publicPath: '/assets',
    metafile: true,
    logLevel: 'warning',
  })
  const outputs = Object.keys(out.metafile.outputs).map(p => basename(p))
  const js = outputs.find(f => /^app-.*\.js$/.test(f)), css = outputs.find(f => /^app-.*\.css$/.test(f))
  writeFileSync(join(dist, 'index.html'), page(js, css))
  return { js, css, files: readdirSync(join(dist, 'assets')) }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { js, css } = await buildDashboard({ check: process.argv.includes('--check') })
  console.log(`dashboard: dist/index.html, assets/${js}, assets/${css}`)
}
