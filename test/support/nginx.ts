import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { pollUntil } from '../helper.js'
import { freePort } from './example-server.js'
import type { Teardown } from './redis.js'

/*
 * nginx (Debian's package) as a child of the test, in front of the apps,
 * configured with the very snippet docs/deployment.md shows: the test reads
 * the ```nginx block from the doc and fills in the ports.
 */

export const NGINX = process.env.NGINX_PATH ?? '/usr/sbin/nginx'
const DOC = fileURLToPath(new URL('../../docs/deployment.md', import.meta.url))
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((path) => existsSync(path))

/** The ```nginx block of docs/deployment.md. */
export async function documentedSnippet (): Promise<string> {
  const doc = await readFile(DOC, 'utf8')
  const block = /```nginx\n([\s\S]*?)```/.exec(doc)?.[1]
  if (block === undefined) throw new Error('docs/deployment.md has no ```nginx block')
  return block
}

/** Replaces exactly one occurrence, or throws: the doc and the test must not drift apart. */
function replaceOnce (text: string, pattern: RegExp, replacement: string): string {
  const matches = text.match(new RegExp(pattern.source, 'g'))
  if (matches?.length !== 1) throw new Error(`expected one match of ${pattern} in the documented snippet, found ${matches?.length ?? 0}`)
  return text.replace(pattern, replacement)
}

export interface NginxOptions {
  /** Ports of the apps behind it (the upstream's servers). */
  upstreams: number[]
  /** proxy_read_timeout, as nginx writes it. @default the documented one */
  readTimeout?: string
}

export interface Nginx {
  port: number
  /** `http://127.0.0.1:<port>` */
  url: string
  /** What nginx logged so far. */
  errorLog (): Promise<string>
}

/**
 * Starts nginx on a free 127.0.0.1 port, not daemonized, every path under a
 * temp dir; stopped (and the dir removed) at teardown. One process
 * (`master_process off`): nothing outlives the test, and no worker switches
 * to another user.
 */
export async function startNginx (t: Teardown, options: NginxOptions): Promise<Nginx> {
  const dir = await mkdtemp(join(tmpdir(), 'realtime-nginx-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const port = await freePort()
  let snippet = await documentedSnippet()
  snippet = replaceOnce(snippet, /listen 80;/, `listen 127.0.0.1:${port};`)
  snippet = replaceOnce(snippet, /(upstream realtime \{\n)(?:\s*server [^\n]*\n)+/, `$1${options.upstreams.map((p) => `    server 127.0.0.1:${p};\n`).join('')}`)
  if (options.readTimeout !== undefined) snippet = replaceOnce(snippet, /proxy_read_timeout \S+;/, `proxy_read_timeout ${options.readTimeout};`)
  const config = `master_process off;
worker_processes 1;
error_log ${dir}/error.log info;
events { worker_connections 4096; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${snippet}
}
`
  await writeFile(join(dir, 'nginx.conf'), config)
  const command = [NGINX, '-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log'), '-g', `daemon off; pid ${dir}/nginx.pid;`]
  // setpriv: the kernel kills nginx even if the test process dies of SIGKILL.
  const argv = SETPRIV === undefined ? command : [SETPRIV, '--pdeathsig', 'KILL', ...command]
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    await exited
  })
  const url = `http://127.0.0.1:${port}`
  await pollUntil(async () => {
    if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}):\n${stderr}\n${await readFile(join(dir, 'error.log'), 'utf8').catch(() => '')}`)
    return fetch(`${url}/health`).then((res) => res.status === 200, () => false)
  }, { timeout: 10_000, interval: 20 })
  return { port, url, errorLog: () => readFile(join(dir, 'error.log'), 'utf8') }
}
