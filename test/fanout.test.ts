import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { test } from 'tap'
import { Type } from 'typebox'
import { LocalBroker, type BroadcastPacket } from '../lib/index.js'
import { build, wsUrl, type TestContext } from './helper.js'

const CLIENTS = fileURLToPath(new URL('./support/many-clients.mjs', import.meta.url))

/** N clients in a child process; resolves once they are all open. */
async function clients (t: TestContext, url: string, count: number): Promise<{ result: Promise<{ received: number, wrong: number }> }> {
  const child = spawn(process.execPath, [CLIENTS, url, String(count)], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => { child.stdin!.end(); child.kill() })
  const lines: Array<(line: string) => void> = []
  let buffered = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk
    let end: number
    while ((end = buffered.indexOf('\n')) !== -1) {
      const line = buffered.slice(0, end)
      buffered = buffered.slice(end + 1)
      lines.shift()?.(line)
    }
  })
  const next = async (): Promise<string> => new Promise((resolve) => lines.push(resolve))
  const opened = next()
  const result = next().then((line) => JSON.parse(line) as { received: number, wrong: number })
  await Promise.race([opened, once(child, 'exit').then(() => { throw new Error('clients exited') })])
  return { result }
}

test('a push to a room of 5,000 reaches each member once and is serialised once', async (t) => {
  const packets: BroadcastPacket[] = []
  class CountingBroker extends LocalBroker {
    override publish (packet: BroadcastPacket): Promise<void> {
      packets.push(packet)
      return super.publish(packet)
    }
  }
  const app = await build(t, (app) => {
    app.ws('/crowd', { heartbeat: false, onOpen: (conn) => conn.join('everyone'), events: { news: Type.String(), done: Type.Null() } })
  }, { realtime: { broker: new CountingBroker() } })
  const groups = await Promise.all([clients(t, wsUrl(app, '/crowd'), 2500), clients(t, wsUrl(app, '/crowd'), 2500)])
  for (let i = 0; i < 1000 && app.realtime.namespace('/crowd').roomSize('everyone') < 5000; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(app.realtime.namespace('/crowd').roomSize('everyone'), 5000)
  const crowd = app.realtime.namespace('/crowd')
  await crowd.to('everyone').emit('news', 'one copy each')
  await crowd.to('everyone').emit('done', null)
  const results = await Promise.all(groups.map((group) => group.result))
  t.same(results, [{ received: 2500, wrong: 0 }, { received: 2500, wrong: 0 }], 'every member got exactly one copy')
  t.equal(packets.length, 2, 'one publish per emit, whatever the number of members')
  t.equal(typeof packets[0]!.frame, 'string', 'the frame was encoded once, before delivery')
})
