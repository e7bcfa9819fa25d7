// How dimension values read in the dashboard (src/format.ts), bundled for Node.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { build } from 'esbuild'
import { fileURLToPath } from 'node:url'

const out = await build({ entryPoints: [fileURLToPath(new URL('../src/format.ts', import.meta.url))], bundle: true, format: 'esm', write: false, logLevel: 'warning' })
const { label } = await import('data:text/javascript;base64,' + Buffer.from(out.outputFiles[0].text).toString('base64'))

test('browsers and operating systems read as their makers spell them; device types are capitalised', () => {
  for (const [dim, v, want] of [
    ['visit:os', 'iOS', 'iOS'], ['visit:os', 'iPadOS', 'iPadOS'], ['visit:os', 'macOS', 'macOS'], ['os', 'iOS', 'iOS'],
    ['visit:os', 'ChromeOS', 'ChromeOS'], ['visit:browser', 'Samsung Internet', 'Samsung Internet'], ['browsers', 'Chrome', 'Chrome'],
    ['visit:device', 'mobile', 'Mobile'], ['devices', 'desktop', 'Desktop'], ['visit:device', 'tablet', 'Tablet'],
  ]) assert.equal(label(dim, v), want, `${dim} ${v}`)
})
