// A real Pulse (`pulse dev`, with its own ClickHouse) and headless Chromium for the browser tests.
import { spawn, spawnSync, execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const repo = fileURLToPath(new URL('../../..', import.meta.url))
const sdk = fileURLToPath(new URL('../..', import.meta.url))
export const CHROMIUM = process.env.PULSE_CHROMIUM || '/usr/bin/chromium'

/** Pulse builds cmd/pulse once and runs `pulse dev` on one port and data directory, restartable. */
export class Pulse {
  async start() {
    this.dir = mkdtempSync(join(tmpdir(), 'pulse-sdk-'))
    this.bin = join(this.dir, 'pulse')
    execFileSync('go', ['build', '-o', this.bin, './cmd/pulse'], { cwd: repo, stdio: 'inherit' })
    await this.up()
  }

  // up starts `pulse dev` and waits for its site key, its ClickHouse address, the address it
  // listens on and /readyz. The first start binds port 0 (the kernel's choice, so no other
  // process can take it between choosing and binding); a restart binds the same port again,
  // because the pages under test reconnect to it.
  async up() {
    const listen = this.port ? `127.0.0.1:${this.port}` : '127.0.0.1:0'
    this.proc = spawn(this.bin, ['dev', '--data', join(this.dir, 'data'), '--listen', listen], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    const seen = new Promise((res, rej) => {
      const read = d => {
        out += d
        const key = out.match(/site key: (pk_[\w-]+)/), ch = out.match(/clickhouse ready.*?addr=([\d.]+):(\d+)/)
        const url = out.match(/msg="pulse listening" url=(http:\/\/127\.0\.0\.1:(\d+))/)
        if (key && ch && url) res([key[1], ch[2], url[1], +url[2]])
      }
      this.proc.stdout.on('data', read)
      this.proc.stderr.on('data', read)
      this.proc.on('exit', code => rej(new Error(`pulse dev exited (${code}):\n${out}`)))
    })
    const timeout = new Promise((_, rej) => setTimeout(() => rej(new Error('pulse dev did not start in 60 s:\n' + out)), 60000))
    ;[this.key, this.chPort, this.base, this.port] = await Promise.race([seen, timeout])
    for (let i = 0; i < 100; i++) {
      try { if ((await fetch(this.base + '/readyz')).ok) return } catch (e) {}
      await new Promise(r => setTimeout(r, 100))
    }
    throw new Error('pulse /readyz never answered 200')
  }

  // down stops Pulse with SIGTERM (it writes every accepted event first) and waits for the exit.
  async down() {
    if (!this.proc || this.proc.exitCode !== null) return
    const exited = new Promise(r => this.proc.once('exit', r))
    this.proc.kill('SIGTERM')
    await exited
  }

  async stop() {
    await this.down()
    rmSync(this.dir, { recursive: true, force: true })
  }

  /** query runs SQL on Pulse's ClickHouse and returns the rows (JSONEachRow). */
  query(sql) {
    // The managed server's password is in the data directory (docs/clickhouse.md).
    const password = readFileSync(join(this.dir, 'data', 'clickhouse', 'password'), 'utf8').trim()
    const r = spawnSync('clickhouse-client', ['--host', '127.0.0.1', '--port', this.chPort, '--password', password, '--database', 'pulse', '-q', sql + ' FORMAT JSONEachRow'], { encoding: 'utf8' })
    if (r.status !== 0) throw new Error('clickhouse-client: ' + r.stderr)
    return r.stdout.trim().split('\n').filter(Boolean).map(l => JSON.parse(l))
  }

  /** events returns the stored events whose path starts with prefix, merged by id (FINAL), plus the raw row count. */
  events(prefix) {
    const where = `pathname LIKE '${prefix.replace(/'/g, '')}%'`
    const rows = this.query(`SELECT toString(event_id) AS id, type, name, pathname, referrer, prop_keys, prop_values FROM events FINAL WHERE ${where} ORDER BY ts, received_at, type, name, event_id`)
    const [{ raw }] = this.query(`SELECT count() AS raw FROM events WHERE ${where}`)
    const props = r => Object.fromEntries(r.prop_keys.map((k, i) => [k, r.prop_values[i]]))
    return { rows: rows.map(r => ({ ...r, props: props(r) })), raw: +raw }
  }

  /** until polls events(prefix) until ok(rows) holds, for up to ms. */
  async until(prefix, ok, ms = 20000) {
    let got
    for (const end = Date.now() + ms; Date.now() < end; await new Promise(r => setTimeout(r, 250))) {
      got = this.events(prefix)
      if (ok(got.rows)) return got
    }
    return got
  }
}

/** tracker returns the built file of sdk-js/dist. */
export const tracker = name => readFileSync(join(sdk, 'dist', name), 'utf8')
