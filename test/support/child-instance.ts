import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { isBuiltin } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build, type Plugin } from 'esbuild'
import WebSocket from 'ws'
import { TestClient, type TestContext } from '../helper.js'
import { spawnLines } from './child-lines.js'

const SOURCE = fileURLToPath(new URL('./instance-child.ts', import.meta.url))

/** Packages stay imports, by absolute URL, so that the bundle runs from a temporary directory. */
const packagesByUrl: Plugin = {
  name: 'packages-by-url',
  setup (build) {
    build.onResolve({ filter: /^[^./]/ }, (args) => ({ path: isBuiltin(args.path) ? args.path : import.meta.resolve(args.path), external: true }))
  }
}

let bundled: Promise<string> | undefined

/**
 * The child's script: instance-child.ts and the plugin's source in one
 * file, bundled once per test process (well under a second) so that the
 * child runs the current source, without a build and without a TypeScript
 * loader of its own.
 */
function childScript (): Promise<string> {
  bundled ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fastify-realtime-child-'))
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
    const outfile = join(dir, 'instance-child.mjs')
    await build({
      entryPoints: [SOURCE],
      outfile,
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      sourcemap: 'inline',
      plugins: [packagesByUrl],
      logLevel: 'silent'
    })
    return outfile
  })()
  return bundled
}

/** An instance in a child process; resolves with its port, and a reader of the lines it prints next. */
export async function childInstance (t: TestContext, redisUrl: string, presenceTtl: number): Promise<{ port: number, child: ChildProcess, nextLine: () => Promise<string> }> {
  const { child, nextLine } = spawnLines(t, ['--enable-source-maps', await childScript(), redisUrl, String(presenceTtl)])
  const { port } = JSON.parse(await nextLine()) as { port: number }
  return { port, child, nextLine }
}

export async function childMember (t: TestContext, port: number, user: string, room: string): Promise<TestClient> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/presence?user=${user}`)
  const client = new TestClient(ws)
  t.teardown(() => { ws.terminate() })
  await once(ws, 'open')
  t.match(await client.request('join', { room }), { type: 'reply' })
  return client
}
