import { test } from 'tap'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import rateLimit from '@fastify/rate-limit'
import { Type } from 'typebox'
import WebSocket from 'ws'
import { userFromQuery } from './fixtures/user-hook.js'
import { build, connect, guardProcess, refusedUpgrade, type TestClient, waitUntil } from './helper.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

function pauseReading (client: TestClient): { resume (): void } {
  const socket = (client.ws as unknown as { _socket: { pause (): void, resume (): void } })._socket
  socket.pause()
  return { resume: () => socket.resume() }
}

test('a slow consumer is closed with 4001; the others get every message, in order', async (t) => {
  const assertClean = guardProcess(t)
  const app = await build(t, (app) => {
    app.ws('/feed', { onOpen: (conn) => conn.join('room'), events: { n: Type.Object({ i: Type.Number(), pad: Type.String() }) } })
  }, { realtime: { maxBufferedBytes: 256 * 1024 } })
  const slow = await connect(t, app, '/feed')
  const fast = await connect(t, app, '/feed')
  for (const client of [slow, fast]) {
    client.send({ type: 'ping' })
    await client.next()
  }
  const reading = pauseReading(slow)
  const feed = app.realtime.namespace('/feed')
  const slowConn = [...feed.connections()][0]!
  const pad = 'x'.repeat(1024)
  // Push until the server gives up on the slow reader (the kernel's socket
  // buffers take several MB first), bounded at 40,000 pushes of 1 KiB.
  let sent = 0
  let received = 0
  let inOrder = true
  const reader = (async () => {
    for (;;) {
      const frame = await fast.next()
      if (frame.data.i === -1) return
      if (frame.data.i !== received) inOrder = false
      received++
    }
  })()
  while (slowConn.socket.readyState === WebSocket.OPEN && sent < 40_000) {
    await feed.to('room').emit('n', { i: sent++, pad })
    if (sent % 50 === 0) await new Promise((resolve) => setImmediate(resolve))
  }
  t.equal(slowConn.socket.readyState, WebSocket.CLOSING, `closing after ${sent} pushes`)
  t.equal(app.realtime.slowConsumersClosed, 1, 'counted')
  await feed.to('room').emit('n', { i: -1, pad: 'end' })
  await reader
  t.equal(received, sent, 'the reading member got every message')
  t.ok(inOrder, 'in order')
  reading.resume()
  t.equal((await slow.closed).code, 4001, 'the slow one sees 4001 once it reads again')
  t.ok(process.memoryUsage().heapUsed < 512 * 1024 * 1024, 'memory bounded')
  assertClean()
})

test("slowConsumer 'drop' drops and counts, and keeps the connection", async (t) => {
  const app = await build(t, (app) => {
    app.ws('/feed', {
      slowConsumer: 'drop',
      maxBufferedBytes: 64 * 1024,
      onOpen: (conn) => conn.join('room'),
      events: { n: Type.Object({ i: Type.Number(), pad: Type.String() }) }
    })
  })
  const slow = await connect(t, app, '/feed')
  slow.send({ type: 'ping' })
  await slow.next()
  const reading = pauseReading(slow)
  const feed = app.realtime.namespace('/feed')
  const [conn] = feed.connections()
  let sent = 0
  while (conn!.droppedMessages < 100 && sent < 40_000) {
    await feed.to('room').emit('n', { i: sent++, pad: 'x'.repeat(1024) })
    if (sent % 50 === 0) await new Promise((resolve) => setImmediate(resolve))
  }
  t.ok(conn!.droppedMessages >= 100, `dropped ${conn!.droppedMessages} of ${sent}`)
  t.equal(app.realtime.droppedMessages, conn!.droppedMessages)
  t.ok(conn!.bufferedAmount < 64 * 1024 + 2048, 'the buffer stayed near the cap')
  reading.resume()
  const delivered = sent - conn!.droppedMessages
  let last = -1
  let ordered = true
  for (let i = 0; i < delivered; i++) {
    const { data } = await slow.next()
    if (data.i <= last) ordered = false
    last = data.i
  }
  t.ok(ordered, 'what arrived is in order')
  slow.send({ type: 'ping' })
  t.same(await slow.next(), { type: 'pong' }, 'still open')
})

test('rate limits: RATE_LIMITED over budget, 1008 for sustained abuse, others unaffected', async (t) => {
  const app = await build(t, (app) => {
    app.ws('/chat', {
      rateLimit: { max: 5, interval: 60_000, maxViolations: 10 },
      messages: {
        say: { data: Type.String(), reply: Type.String(), handler: (_conn, text) => text },
        costly: { rateLimit: { max: 1, interval: 60_000, maxViolations: 0 }, reply: Type.String(), handler: () => 'done' }
      }
    })
  })
  const abuser = await connect(t, app, '/chat')
  const answers: any[] = []
  for (let i = 0; i < 5; i++) answers.push(await abuser.request('say', `m${i}`, i))
  t.ok(answers.every((answer, i) => answer.type === 'reply' && answer.data === `m${i}`), 'within budget')
  t.same(await abuser.request('say', 'over', 'x'), { type: 'error', id: 'x', error: { code: 'RATE_LIMITED', message: 'Too many messages' } })
  const other = await connect(t, app, '/chat')
  t.match(await other.request('say', 'hello'), { type: 'reply', data: 'hello' }, 'another client is unaffected')
  t.match(await other.request('costly', null), { type: 'reply', data: 'done' })
  t.match(await other.request('costly', null), { type: 'error', error: { code: 'RATE_LIMITED', message: "Too many 'costly' messages" } }, 'per type')
  for (let i = 0; i < 20; i++) abuser.send({ type: 'say', data: 'flood' })
  t.same(await abuser.closed, { code: 1008, reason: 'rate limit exceeded' })
})

test('connection caps refuse before the upgrade, and free up as clients leave', async (t) => {
  const app = await build(t, (app) => {
    app.ws('/u', { preValidation: userFromQuery })
  }, { realtime: { maxConnections: 3, maxConnectionsPerUser: 2 } })
  const a1 = await connect(t, app, '/u?user=a')
  await connect(t, app, '/u?user=a')
  const perUser = await refusedUpgrade(app, '/u?user=a')
  t.same([perUser.statusCode, perUser.upgraded], [429, false])
  t.match(JSON.parse(perUser.body), { code: 'FST_RT_CONNECTION_LIMIT' })
  await connect(t, app, '/u?user=b')
  const global = await refusedUpgrade(app, '/u?user=c')
  t.same([global.statusCode, global.upgraded], [503, false])
  t.match(JSON.parse(global.body), { code: 'FST_RT_TOO_MANY_CONNECTIONS' })
  await a1.close()
  await waitUntil(() => app.realtime.connectionCount === 2)
  await connect(t, app, '/u?user=a')
  t.pass('a freed place is taken again')

  const perIp = await build(t, (app) => { app.ws('/ip', {}) }, { realtime: { maxConnectionsPerIp: 1 } })
  const first = await connect(t, perIp, '/ip')
  t.equal((await refusedUpgrade(perIp, '/ip')).statusCode, 429)
  await first.close()
  await waitUntil(() => perIp.realtime.connectionCount === 0)
  await connect(t, perIp, '/ip')
})

test('@fastify/rate-limit on the route refuses upgrade floods with 429 before the upgrade', async (t) => {
  const app = await build(t, async (app) => {
    await app.register(rateLimit, { global: false })
    app.ws('/chat', { config: { rateLimit: { max: 3, timeWindow: 60_000 } } })
  })
  const open = await Promise.all([0, 1, 2].map(() => connect(t, app, '/chat')))
  const refused = await refusedUpgrade(app, '/chat')
  t.same([refused.statusCode, refused.upgraded], [429, false])
  open[0]!.send({ type: 'ping' })
  t.same(await open[0]!.next(), { type: 'pong' }, 'open connections are fine')
})

test('room limits and canJoin: ROOM_LIMIT, FORBIDDEN, and nothing from a refused room arrives', async (t) => {
  const app = await build(t, (app) => {
    app.ws('/rooms', {
      canJoin: async (_conn, room) => !room.startsWith('secret'),
      messages: { join: { data: Type.Union([Type.String(), Type.Array(Type.String())]), handler: (conn, room) => conn.join(room) } },
      events: { n: Type.String() }
    })
  }, { realtime: { maxRoomsPerConnection: 3, maxRoomNameLength: 10 } })
  const client = await connect(t, app, '/rooms')
  t.match(await client.request('join', 'secret-1'), { type: 'error', error: { code: 'FORBIDDEN', message: "Not allowed to join 'secret-1'" } })
  t.match(await client.request('join', 'x'.repeat(11)), { type: 'error', error: { code: 'ROOM_LIMIT' } })
  t.match(await client.request('join', ['a', 'b', 'c']), { type: 'reply' })
  t.match(await client.request('join', 'd'), { type: 'error', error: { code: 'ROOM_LIMIT' } })
  t.match(await client.request('join', 'a'), { type: 'reply' }, 'a room it is in already does not count twice')
  const ns = app.realtime.namespace('/rooms')
  await ns.to('secret-1').emit('n', 'leak')
  await ns.to('a').emit('n', 'sentinel')
  t.same(await client.next(), { type: 'n', data: 'sentinel' }, 'the sentinel came first: nothing from the refused room')
  t.equal(ns.roomSize('secret-1'), 0)
  // A refusal nobody awaits is not an unhandled rejection.
  const [conn] = ns.connections()
  const assertClean = guardProcess(t)
  void conn!.join('secret-2')
  await new Promise((resolve) => setImmediate(resolve))
  assertClean()
})

test('compression is off by default; when on, a compression bomb is refused within maxPayload', async (t) => {
  const app = await build(t, (app) => { app.ws('/z', { messages: { big: { handler: () => {} } } }) },
    { realtime: { perMessageDeflate: true, maxPayload: 64 * 1024 } })
  const ws = new WebSocket(`ws://127.0.0.1:${(app.server.address() as { port: number }).port}/z`, { perMessageDeflate: true })
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
  await new Promise((resolve) => ws.once('open', resolve))
  t.match(ws.extensions, /permessage-deflate/)
  gc()
  const before = kept()
  ws.send(Buffer.alloc(10 * 1024 * 1024), { compress: true, binary: true })
  t.equal(await closed, 1009)
  gc()
  t.ok(kept() - before < 16 * 1024 * 1024, 'nothing of the inflated bomb is kept')
  const plain = await build(t, (app) => { app.ws('/p', {}) })
  const client = await connect(t, plain, '/p')
  t.equal(client.ws.extensions, '', 'off by default')
})

/** Heap and buffers in use, after the caller's GC. */
function kept (): number {
  const memory = process.memoryUsage()
  return memory.heapUsed + memory.arrayBuffers
}
