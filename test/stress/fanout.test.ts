import { fileURLToPath } from 'node:url'
import { test } from 'tap'
import { Type } from 'typebox'
import { LocalBroker, type BroadcastPacket } from '../../lib/index.js'
import { build, pollUntil, wsUrl, type TestContext } from '../helper.js'
import { spawnLines } from '../support/child-lines.js'

const CLIENTS = fileURLToPath(new URL('../support/many-clients.mjs', import.meta.url))

/** N clients in a child process; resolves once they are all open, with their final count to come. */
async function clients (t: TestContext, url: string, count: number): Promise<{ result: Promise<{ received: number, wrong: number }> }> {
  const { nextLine } = spawnLines(t, [CLIENTS, url, String(count)])
  await nextLine()
  return { result: nextLine().then((line) => JSON.parse(line) as { received: number, wrong: number }) }
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
  await pollUntil(() => app.realtime.namespace('/crowd').roomSize('everyone') === 5000, { interval: 10 })
  t.equal(app.realtime.namespace('/crowd').roomSize('everyone'), 5000)
  const crowd = app.realtime.namespace('/crowd')
  await crowd.to('everyone').emit('news', 'one copy each')
  await crowd.to('everyone').emit('done', null)
  const results = await Promise.all(groups.map((group) => group.result))
  t.same(results, [{ received: 2500, wrong: 0 }, { received: 2500, wrong: 0 }], 'every member got exactly one copy')
  t.equal(packets.length, 2, 'one publish per emit, whatever the number of members')
  t.equal(typeof packets[0]!.frame, 'string', 'the frame was encoded once, before delivery')
})
