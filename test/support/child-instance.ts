import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import { TestClient, type TestContext } from '../helper.js'
import { spawnLines } from './child-lines.js'

const CHILD = fileURLToPath(new URL('./instance-child.mjs', import.meta.url))

/** An instance in a child process; resolves with its port, and a reader of the lines it prints next. */
export async function childInstance (t: TestContext, redisUrl: string, presenceTtl: number): Promise<{ port: number, child: ChildProcess, nextLine: () => Promise<string> }> {
  const { child, nextLine } = spawnLines(t, [CHILD, redisUrl, String(presenceTtl)])
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
