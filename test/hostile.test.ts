import { once } from 'node:events'
import { connect as tcpConnect, type Socket } from 'node:net'
import { test } from 'tap'
import { Type } from 'typebox'
import WebSocket from 'ws'
import { build, connect, deferred, guardProcess, httpUrl, refusedUpgrade, type TestClient, waitUntil } from './helper.js'
import type { FastifyInstance } from 'fastify'

/*
 * Rows of shared/HOSTILE.md about frames, handshakes and lifecycle: each
 * asserts what the client observes, that the process lives, and that the
 * server serves a fresh client afterwards.
 */

async function echoApp (t: Parameters<typeof build>[0], closes: number[] = []): Promise<FastifyInstance> {
  return build(t, (app) => {
    app.ws('/echo', {
      messages: { echo: { data: Type.String(), reply: Type.String(), handler: (_conn, text) => text } },
      onClose: (_conn, code) => { closes.push(code) }
    })
  })
}

async function stillServes (t: Parameters<typeof build>[0], app: FastifyInstance): Promise<void> {
  const client = await connect(t, app, '/echo')
  t.match(await client.request('echo', 'alive'), { type: 'reply', data: 'alive' }, 'a fresh client is served')
}

function rawSocket (client: TestClient): Socket {
  return (client.ws as unknown as { _socket: Socket })._socket
}

const MASK = [0, 0, 0, 0]

test('protocol violations close the peer with 1002 or 1007, clean up once, and nothing crashes', async (t) => {
  const assertClean = guardProcess(t)
  const closes: number[] = []
  const app = await echoApp(t, closes)
  const cases: Array<[string, number[], number]> = [
    ['RSV2 and RSV3 set', [0xb1, 0x80, ...MASK], 1002],
    ['unknown opcode 3', [0x83, 0x80, ...MASK], 1002],
    ['ping with 126 bytes', [0x89, 0x80 | 126, 0, 126, ...MASK, ...new Array(126).fill(0)], 1002],
    ['fragmented ping', [0x09, 0x80, ...MASK], 1002],
    ['unmasked frame from a client', [0x81, 0x01, 0x61], 1002],
    ['invalid UTF-8', [0x81, 0x82, ...MASK, 0xff, 0xfe], 1007],
    ['close code 999', [0x88, 0x82, ...MASK, 0x03, 0xe7], 1002],
    ['close code 1005 on the wire', [0x88, 0x82, ...MASK, 0x03, 0xed], 1002]
  ]
  for (const [name, bytes, expected] of cases) {
    const client = await connect(t, app, '/echo')
    rawSocket(client).write(Buffer.from(bytes))
    t.equal((await client.closed).code, expected, name)
  }
  await waitUntil(() => closes.length === cases.length)
  t.equal(closes.length, cases.length, 'onClose once per connection')
  t.equal(app.realtime.connectionCount, 0)
  await stillServes(t, app)
  assertClean()
})

test('a ping between two fragments is answered and the message still arrives whole', async (t) => {
  const app = await echoApp(t)
  const client = await connect(t, app, '/echo')
  const message = Buffer.from('{"type":"echo","data":"joined","id":1}')
  const first = message.subarray(0, 10)
  const rest = message.subarray(10)
  const pong = once(client.ws, 'pong')
  const socket = rawSocket(client)
  socket.write(Buffer.from([0x01, 0x80 | first.length, ...MASK, ...first]))
  socket.write(Buffer.from([0x89, 0x80, ...MASK]))
  socket.write(Buffer.from([0x80, 0x80 | rest.length, ...MASK, ...rest]))
  await pong
  t.same(await client.next(), { type: 'reply', id: 1, data: 'joined' })
})

test('a flood of tiny fragments ends the connection with memory bounded', async (t) => {
  const assertClean = guardProcess(t)
  const app = await echoApp(t)
  const client = await connect(t, app, '/echo')
  const heapBefore = process.memoryUsage().heapUsed
  for (let i = 0; i < 20_000 && client.ws.readyState === WebSocket.OPEN; i++) client.ws.send(Buffer.alloc(1), { fin: false })
  const { code } = await client.closed
  t.equal(code, 1008, 'ws refuses the flood of parts with 1008')
  t.ok(process.memoryUsage().heapUsed - heapBefore < 64 * 1024 * 1024, 'heap bounded')
  await stillServes(t, app)
  assertClean()
})

test('a ping flood from a client that reads nothing ends with the connection terminated', async (t) => {
  const closed = deferred()
  const app = await build(t, (app) => { app.ws('/echo', { onClose: () => { closed.resolve() } }) })
  const client = await connect(t, app, '/echo')
  rawSocket(client).pause()
  for (let i = 0; i < 10_000 && client.ws.readyState === WebSocket.OPEN; i++) client.ws.ping()
  await closed.promise
  t.equal(app.realtime.connectionCount, 0, 'cleaned up')
})

test('a reset in the middle of a frame cleans up once', async (t) => {
  const closes: number[] = []
  const app = await echoApp(t, closes)
  const client = await connect(t, app, '/echo')
  rawSocket(client).write(Buffer.from([0x81, 0xfe, 0x00]))
  rawSocket(client).resetAndDestroy()
  await waitUntil(() => closes.length === 1)
  t.same(closes, [1006])
  await stillServes(t, app)
})

test('a reset during an async auth hook: no crash, no connection, late completion is a no-op', async (t) => {
  const assertClean = guardProcess(t)
  const entered = deferred()
  const release = deferred()
  let opened = 0
  const app = await build(t, (app) => {
    app.ws('/slow', {
      preValidation: async () => {
        entered.resolve()
        await release.promise
      },
      onOpen: () => { opened++ }
    })
    app.ws('/echo', { messages: { echo: { data: Type.String(), reply: Type.String(), handler: (_c, text) => text } } })
  })
  const { port } = app.server.address() as { port: number }
  const socket = tcpConnect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write('GET /slow HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
    'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
  await entered.promise
  socket.resetAndDestroy()
  await once(socket, 'close')
  // Release the hook only once the server has seen the reset.
  await waitUntil(async () => await connections(app) === 0, 1000)
  release.resolve()
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(opened, 0)
  t.equal(app.realtime.connectionCount, 0)
  await stillServes(t, app)
  assertClean()
})

test('a reply to a connection that closed meanwhile is dropped silently', async (t) => {
  const assertClean = guardProcess(t)
  const release = deferred()
  const closed = deferred()
  const lines: string[] = []
  const app = await build(t, (app) => {
    app.ws('/echo', {
      messages: {
        slow: { reply: Type.String(), handler: async () => { await release.promise; return 'late' } },
        echo: { data: Type.String(), reply: Type.String(), handler: (_c, text) => text }
      },
      onClose: () => { closed.resolve() }
    })
  }, { fastify: { logger: { level: 'warn', stream: { write: (line: string) => { lines.push(line) } } } } })
  const client = await connect(t, app, '/echo')
  client.send({ type: 'slow', id: 1 })
  client.send({ type: 'echo', data: 'sync point', id: 2 })
  t.same(await client.next(), { type: 'reply', id: 2, data: 'sync point' })
  await client.close()
  await closed.promise
  release.resolve()
  await new Promise((resolve) => setImmediate(resolve))
  t.same(lines, [], 'nothing logged')
  await stillServes(t, app)
  assertClean()
})

test('upgrades during shutdown get 503 while open clients get 1001', async (t) => {
  const app = await build(t, (app) => { app.ws('/echo', {}) }, { realtime: { closeTimeout: 1000 } })
  const clients = await Promise.all(Array.from({ length: 20 }, () => connect(t, app, '/echo')))
  // One client does not answer the close, which holds shutdown open for closeTimeout.
  rawSocket(clients[0]!).pause()
  const closing = app.close()
  const refused = await refusedUpgrade(app, '/echo')
  t.equal(refused.statusCode, 503)
  await closing
  for (const client of clients.slice(1)) t.equal((await client.closed).code, 1001)
})

test('Node refuses a slowloris upgrade with 408 and the server goes on', async (t) => {
  const app = await build(t, (app) => { app.ws('/echo', {}) }, {
    // Node's own slowloris guard, passed through to http.createServer.
    fastify: { http: { headersTimeout: 500, requestTimeout: 0, connectionsCheckingInterval: 100 } } as never
  })
  const { port } = app.server.address() as { port: number }
  const socket = tcpConnect(port, '127.0.0.1')
  await once(socket, 'connect')
  const header = 'GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n'
  let answer = ''
  socket.on('data', (chunk) => { answer += chunk.toString() })
  let i = 0
  const drip = setInterval(() => { if (i < header.length && !socket.destroyed) socket.write(header[i++]!) }, 100)
  await once(socket, 'close')
  clearInterval(drip)
  t.match(answer, /^HTTP\/1.1 408/)
  const response = await fetch(httpUrl(app, '/echo'))
  t.equal(response.status, 404, 'HTTP still answered')
})

async function connections (app: FastifyInstance): Promise<number> {
  return new Promise((resolve, reject) => app.server.getConnections((err, count) => err ? reject(err) : resolve(count)))
}
