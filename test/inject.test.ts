import Fastify, { type FastifyInstance } from 'fastify'
import { test } from 'tap'
import { Type } from 'typebox'
import realtime, { defineRoute, InjectUpgradeError, RealtimeError } from '../lib/index.js'
import { waitUntil, type TestContext } from './helper.js'

/** A route with an auth hook, a typed request, an event and a server-side close. */
const room = defineRoute({
  path: '/room',
  preValidation: async (request, reply) => {
    const { token } = request.query as { token?: string }
    if (token !== 'ok') await reply.code(401).send({ message: 'no token' })
  },
  messages: {
    join: {
      data: Type.Object({ room: Type.String({ minLength: 1 }) }),
      handler: async (conn, { room }) => { await conn.join(room) }
    },
    say: {
      data: Type.Object({ room: Type.String(), text: Type.String() }),
      reply: Type.Object({ length: Type.Number() }),
      handler: (conn, { room, text }) => {
        conn.to(room).emit('said', { text })
        return { length: text.length }
      }
    },
    bye: { handler: (conn) => { conn.close(4000, 'bye') } }
  },
  events: { said: Type.Object({ text: Type.String() }) }
})

/** An app with the route, never listening. */
async function app (t: TestContext): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime, { heartbeat: false })
  app.ws(room)
  await app.ready()
  return app
}

test('inject: requests, events and errors through the route, without a port', async (t) => {
  const server = await app(t)
  const alice = await server.realtime.inject(room, { query: { token: 'ok' } })
  const bob = await server.realtime.inject('/room', { query: { token: 'ok' } })
  t.equal(server.server.listening, false, 'no port was opened')
  t.equal(server.realtime.connectionCount, 2)

  t.equal(await alice.request('join', { room: 'r' }), null, 'a handler that returns nothing replies null')
  await bob.request('join', { room: 'r' })
  const reply = await alice.request('say', { room: 'r', text: 'hello' })
  t.same(reply, { length: 5 }, 'the reply is typed and answered')
  t.same(await bob.next('said'), { text: 'hello' }, 'the event reaches the other member')

  const refused = alice.request('say', { room: 'r' } as never)
  await t.rejects(refused, { code: 'VALIDATION_FAILED' }, 'a validation error rejects with its wire code')
  await refused.catch((err: unknown) => t.ok(err instanceof RealtimeError))
  t.same(await alice.request('say', { room: 'r', text: 'still open' }), { length: 10 }, 'the connection lives on')
})

test('inject: a refused upgrade rejects with the HTTP status, and no connection is left', async (t) => {
  const server = await app(t)
  const err = await server.realtime.inject(room, { query: { token: 'bad' } }).catch((err: unknown) => err)
  t.ok(err instanceof InjectUpgradeError)
  t.equal((err as InjectUpgradeError).statusCode, 401)
  t.equal(server.realtime.connectionCount, 0)
})

test('inject: closes are observed from both sides', async (t) => {
  const server = await app(t)
  const client = await server.realtime.inject(room, { query: { token: 'ok' } })
  client.send('bye')
  t.same(await client.closed, { code: 4000, reason: 'bye' }, 'a close by the server')

  const other = await server.realtime.inject(room, { query: { token: 'ok' } })
  t.same(await other.close(4100, 'done'), { code: 4100, reason: 'done' }, 'a close by the client')
  await t.rejects(other.next('said'), /closed/, 'waiting on a closed connection rejects')
  // The server learns of the close a moment after the client does.
  await waitUntil(() => server.realtime.connectionCount === 0)
  t.equal(server.realtime.connectionCount, 0)
})

test('inject: app.close() closes injected connections with 1001', async (t) => {
  const server = await app(t)
  const client = await server.realtime.inject(room, { query: { token: 'ok' } })
  await server.close()
  t.equal((await client.closed).code, 1001)
})

test("@fastify/websocket's injectWS works on a route of the plugin", async (t) => {
  const server = await app(t)
  const ws = await server.injectWS('/room?token=ok')
  const answer = new Promise<string>((resolve) => ws.once('message', (data: Buffer) => resolve(data.toString())))
  ws.send(JSON.stringify({ type: 'say', id: 1, data: { room: 'r', text: 'abc' } }))
  t.same(JSON.parse(await answer), { type: 'reply', id: 1, data: { length: 3 } })
  ws.terminate()
})
