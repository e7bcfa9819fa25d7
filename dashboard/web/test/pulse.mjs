// A real Pulse (`pulse dev` with its managed ClickHouse, the dashboard built in) and headless
// Chromium for the dashboard's browser tests.
import { spawn, execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import { buildDashboard } from '../build.mjs'

const repo = fileURLToPath(new URL('../../..', import.meta.url))
export const CHROMIUM = process.env.PULSE_CHROMIUM || '/usr/bin/chromium'
export const SHOTS = fileURLToPath(new URL('./screenshots/', import.meta.url))

/** Pulse builds the dashboard and cmd/pulse, runs `pulse dev` in a temporary data directory and logs in over the API. */
export class Pulse {
  async start({ args = [] } = {}) {
    await buildDashboard()
    this.dir = mkdtempSync(join(tmpdir(), 'pulse-web-'))
    // PULSE_BIN: a pulse binary built elsewhere (with this dashboard build embedded).
    this.bin = process.env.PULSE_BIN || join(this.dir, 'pulse')
    if (!process.env.PULSE_BIN) execFileSync('go', ['build', '-o', this.bin, './cmd/pulse'], { cwd: repo, stdio: 'inherit' })
    const data = join(this.dir, 'data')
    // Port 0: pulse binds a port the kernel picks and logs it, so no other process can take
    // the port between a test choosing it and pulse binding it.
    this.proc = spawn(this.bin, ['dev', '--data', data, '--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.out = ''
    const seen = new Promise((res, rej) => {
      const read = d => {
        const out = (this.out += d)
        const key = out.match(/site key: (pk_[\w-]+)/), pw = out.match(/log in:\s+(\S+) \/ (\S+)/)
        const url = out.match(/msg="pulse listening" url=(http:\/\/127\.0\.0\.1:(\d+))/)
        if (key && pw && url) res([key[1], pw[1], pw[2], url[1], +url[2]])
      }
      this.proc.stdout.on('data', read)
      this.proc.stderr.on('data', read)
      this.proc.on('exit', code => rej(new Error(`pulse dev exited (${code}):\n${this.out}`)))
    })
    const timeout = new Promise((_, rej) => setTimeout(() => rej(new Error('pulse dev did not start in 90 s:\n' + this.out)), 90000))
    ;[this.key, this.email, this.password, this.base, this.port] = await Promise.race([seen, timeout])
    for (let i = 0; i < 100; i++) {
      try { if ((await fetch(this.base + '/readyz')).ok) break } catch (e) {}
      await new Promise(r => setTimeout(r, 100))
    }
    const login = await fetch(this.base + '/api/v1/login', { method: 'POST', body: JSON.stringify({ email: this.email, password: this.password }) })
    if (!login.ok) throw new Error('login over the API: ' + login.status)
    this.token = (await login.json()).token
    const orgs = await this.api('GET', '/orgs')
    this.org = orgs[0].id
    this.site = (await this.api('GET', `/orgs/${this.org}/sites`)).find(s => s.public_key === this.key).id
  }

  /**
   * clickhouse runs SQL on Pulse's managed ClickHouse (the port of its "clickhouse ready" line, the
   * password in the data directory, docs/clickhouse.md), for what the API cannot do: data
   * written before a check existed.
   */
  clickhouse(sql) {
    const port = this.out.match(/msg="clickhouse ready" addr=[\d.]+:(\d+)/)?.[1]
    if (!port) throw new Error('no "clickhouse ready" line in pulse\'s log')
    const password = readFileSync(join(this.dir, 'data', 'clickhouse', 'password'), 'utf8').trim()
    const r = spawnSync('clickhouse-client', ['--host', '127.0.0.1', '--port', port, '--password', password, '--database', 'pulse', '-q', sql], { encoding: 'utf8' })
    if (r.status !== 0) throw new Error('clickhouse-client: ' + r.stderr)
    return r.stdout
  }

  /** waitLog waits until Pulse's output matches re (e.g. the demo's history is written). */
  async waitLog(re, ms = 180000) {
    for (const end = Date.now() + ms; Date.now() < end; await new Promise(r => setTimeout(r, 250))) {
      if (re.test(this.out)) return
    }
    throw new Error(`pulse never logged ${re} in ${ms} ms`)
  }

  /** api calls /api/v1 as the demo user (Bearer session token). */
  async api(method, path, body) {
    const res = await fetch(this.base + '/api/v1' + path, {
      method, headers: { Authorization: 'Bearer ' + this.token }, body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await res.text()
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`)
    return text ? JSON.parse(text) : null
  }

  /** queryAPI reports whether POST /api/v1/query exists on this binary (not 404 for the route). */
  async queryAPI() {
    const res = await fetch(this.base + '/api/v1/query', {
      method: 'POST', headers: { Authorization: 'Bearer ' + this.token },
      body: JSON.stringify({ site_id: this.site, metrics: ['visitors'], date_range: '7d' }),
    })
    return res.status !== 404 && res.status !== 405
  }

  /** send posts events to POST /v1/events for the demo site (as a browser at Pulse's own origin). */
  async send(events, headers = {}) {
    const res = await fetch(`${this.base}/v1/events?site=${this.key}`, {
      method: 'POST', body: JSON.stringify(events),
      headers: { Origin: this.base, 'User-Agent': 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36', ...headers },
    })
    if (!res.ok && res.status !== 202) throw new Error('POST /v1/events: ' + res.status + ' ' + await res.text())
  }

  async stop() {
    if (this.proc && this.proc.exitCode === null) {
      const exited = new Promise(r => this.proc.once('exit', r))
      this.proc.kill('SIGTERM')
      await exited
    }
    if (this.dir) rmSync(this.dir, { recursive: true, force: true })
  }
}

export async function launch() {
  mkdirSync(SHOTS, { recursive: true })
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'],
  })
}

/** login signs in through the dashboard's form and waits for the site list. */
export async function login(page, pulse) {
  await page.goto(pulse.base + '/login')
  await page.getByLabel('Email').fill(pulse.email)
  await page.getByLabel('Password').fill(pulse.password)
  await page.getByRole('button', { name: 'Log in' }).click()
  await page.getByRole('heading', { name: 'Sites' }).waitFor()
}

/** shot writes a screenshot to test/screenshots/NAME.png. */
export const shot = (page, name, opts = {}) => page.screenshot({ path: join(SHOTS, name + '.png'), ...opts })

export const readJSON = p => JSON.parse(readFileSync(p, 'utf8'))
