import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import { TestClient, type TestContext } from '../helper.js'

const CHILD = fileURLToPath(new URL('./instance-child.mjs', import.meta.url))

/** An instance in a child process; resolves with its port, and a reader of the lines it prints next. */
export async function childInstance (t: TestContext, redisUrl: string, presenceTtl: number): Promise<{ port: number, child: ReturnType<typeof spawn>, nextLine: () => Promise<string> }> {
  const child = spawn(process.execPath, [CHILD, redisUrl, String(presenceTtl)], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const waiting: Array<(line: string) => void> = []
  const ready: string[] = []
  let buffered = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk
    let end: number
    while ((end = buffered.indexOf('\n')) !== -1) {
      const line = buffered.slice(0, end)
      buffered = buffered.slice(end + 1)
      const waiter = waiting.shift()
      if (waiter !== undefined) waiter(line)
      else ready.push(line)
    }
  })
  const nextLine = async (): Promise<string> => ready.shift() ?? new Promise((resolve) => waiting.push(resolve))
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

