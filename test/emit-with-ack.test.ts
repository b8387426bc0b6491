import { test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import WebSocket from 'ws'
import { defineRoute, errors, RealtimeError, type Connection, type RealtimeOptions } from '../lib/index.js'
import { connect as connectClient, type RealtimeClient } from '../lib/client/index.js'
import { build, connect, deferred, guardProcess, waitUntil, wsUrl, type TestClient, type TestContext } from './helper.js'

/*
 * conn.emitWithAck(): an event to one connection that asks for an answer,
 * against bare `ws` clients (echoing the id by hand) and the typed client
 * (answering with a listener's return value).
 */

const asks = defineRoute({
  path: '/asks',
  events: {
    confirm: Type.Object({ amount: Type.Number() }),
    notice: Type.Object({ text: Type.String() })
  },
  acks: {
    confirm: Type.Object({ ok: Type.Boolean() })
  },
  messages: {
    hello: { reply: Type.String(), handler: () => 'hi' }
  }
})

type Asks = typeof asks
type AsksConnection = Parameters<NonNullable<Asks['onOpen']>>[0]

/** An app with the `asks` route whose connections a test takes as they open. */
async function asksServer (t: TestContext, options: RealtimeOptions = {},
  onOpen?: (conn: AsksConnection) => unknown): Promise<{ app: FastifyInstance, opened: () => Promise<AsksConnection> }> {
  const waiting: Array<(conn: AsksConnection) => void> = []
  const early: AsksConnection[] = []
  const route = {
    ...asks,
    onOpen: async (conn: AsksConnection) => {
      const next = waiting.shift()
      if (next === undefined) early.push(conn)
      else next(conn)
      await onOpen?.(conn)
    }
  }
  const app = await build(t, (app) => { app.ws(route) }, { realtime: options })
  return {
    app,
    opened: async () => early.shift() ?? new Promise((resolve) => waiting.push(resolve))
  }
}

function typedClient (t: TestContext, app: FastifyInstance): RealtimeClient<Asks> {
  const client = connectClient<Asks>(wsUrl(app, '/asks'), { WebSocket, reconnect: false })
  t.teardown(() => client.close())
  return client
}

async function bareClient (t: TestContext, app: FastifyInstance): Promise<TestClient> {
  return connect(t, app, '/asks')
}

test('a bare client answers by echoing the id in a reply frame', async (t) => {
  const { app, opened } = await asksServer(t)
  const client = await bareClient(t, app)
  const conn = await opened()
  const answer = conn.emitWithAck('confirm', { amount: 3 })
  const frame = await client.next()
  t.match(frame, { type: 'confirm', data: { amount: 3 }, id: /^s\d+$/ })
  t.equal(typeof frame.id, 'string', 'the server id is a string a client echoes as is')
  client.send({ type: 'reply', id: frame.id, data: { ok: true } })
  const ok: boolean = (await answer).ok
  t.equal(ok, true)

  // Without an ack schema anything comes back, typed unknown.
  const free = conn.emitWithAck('notice', { text: 'hi' })
  const second = await client.next()
  t.not(second.id, frame.id, 'each ask has its own id')
  client.send({ type: 'reply', id: second.id, data: [1, 'two'] })
  t.same(await free, [1, 'two'])
  // The connection still handles messages.
  t.match(await client.request('hello', undefined), { type: 'reply', data: 'hi' })
})

test('the typed client answers with its first listener\'s return value, sync or async', async (t) => {
  const { app, opened } = await asksServer(t)
  const client = typedClient(t, app)
  const seen: number[] = []
  client.on('confirm', ({ amount }) => {
    seen.push(amount)
    return { ok: amount > 0 }
  })
  client.on('confirm', () => ({ ok: false })) // a second listener is called, but does not answer
  client.on('notice', async ({ text }) => {
    await new Promise((resolve) => setImmediate(resolve))
    return text.toUpperCase()
  })
  const conn = await opened()
  t.same(await conn.emitWithAck('confirm', { amount: 2 }), { ok: true })
  t.same(await conn.emitWithAck('confirm', { amount: -1 }), { ok: false })
  t.same(seen, [2, -1])
  t.equal(await conn.emitWithAck('notice', { text: 'shout' }), 'SHOUT')
  // A listener that returns nothing answers null; one whose answer JSON cannot carry answers INTERNAL.
  const quiet = typedClient(t, app)
  quiet.on('notice', () => {})
  quiet.on('confirm', () => ({ ok: 10n as unknown as boolean }))
  const conn2 = await opened()
  t.equal(await conn2.emitWithAck('notice', { text: 'x' }), null)
  await t.rejects(conn2.emitWithAck('confirm', { amount: 1 }), { name: 'RealtimeError', code: 'INTERNAL' })
  // A plain emit still reaches the listener, and nothing is answered.
  const heard = deferred<string>()
  client.on('notice', ({ text }) => { heard.resolve(text) })
  conn.emit('notice', { text: 'plain' })
  t.equal(await heard.promise, 'plain')
})

test('a listener that throws or rejects answers with an error frame: a RealtimeError with its code', async (t) => {
  const { app, opened } = await asksServer(t)
  const client = typedClient(t, app)
  client.on('confirm', ({ amount }) => {
    if (amount > 10) throw Object.assign(new Error('too much'), { code: 'TOO_MUCH' })
    return { ok: true }
  })
  client.on('notice', async () => { throw new Error('broken') })
  const conn = await opened()
  const refused = await conn.emitWithAck('confirm', { amount: 11 }).catch((err: unknown) => err)
  t.ok(refused instanceof RealtimeError)
  t.match(refused, { code: 'TOO_MUCH', message: 'too much' })
  await t.rejects(conn.emitWithAck('notice', { text: 'x' }), { name: 'RealtimeError', code: 'INTERNAL', message: 'broken' })
  t.same(await conn.emitWithAck('confirm', { amount: 1 }), { ok: true }, 'the connection goes on')
})

test('a typed client without a listener answers UNKNOWN_TYPE at once', async (t) => {
  const { app, opened } = await asksServer(t)
  typedClient(t, app)
  const conn = await opened()
  await t.rejects(conn.emitWithAck('notice', { text: 'x' }, { timeout: 60_000 }), { name: 'RealtimeError', code: 'UNKNOWN_TYPE' })
})

test('a bare client\'s error frame rejects with its code, message and details', async (t) => {
  const { app, opened } = await asksServer(t)
  const client = await bareClient(t, app)
  const conn = await opened()
  const answer = conn.emitWithAck('confirm', { amount: 1 })
  const { id } = await client.next()
  client.send({ type: 'error', id, error: { code: 'NOPE', message: 'declined', details: [{ path: '/amount', message: 'too low' }] } })
  await t.rejects(answer, { name: 'RealtimeError', code: 'NOPE', message: 'declined', details: [{ path: '/amount', message: 'too low' }] })
  // A malformed error object still settles the ask, as INTERNAL.
  const second = conn.emitWithAck('confirm', { amount: 2 })
  const { id: id2 } = await client.next()
  client.send({ type: 'error', id: id2, error: 'nope' })
  await t.rejects(second, { name: 'RealtimeError', code: 'INTERNAL' })
})

test('no answer in time rejects with FST_RT_ACK_TIMEOUT, the call\'s timeout or ackTimeout; a late answer is ignored', async (t) => {
  const { app, opened } = await asksServer(t, { ackTimeout: 30 })
  const client = await bareClient(t, app)
  const conn = await opened()
  const started = Date.now()
  await t.rejects(conn.emitWithAck('confirm', { amount: 1 }), { code: 'FST_RT_ACK_TIMEOUT' })
  t.ok(Date.now() - started >= 25, 'the default is the plugin\'s ackTimeout')
  const late = await client.next()
  const err = await conn.emitWithAck('notice', { text: 'x' }, { timeout: 20 }).catch((e: unknown) => e)
  t.ok(err instanceof errors.FST_RT_ACK_TIMEOUT)
  t.match(err, { message: "No answer to 'notice' within 20 ms" })
  await client.next()
  // Answering an ask that timed out: ignored, and the connection goes on.
  client.send({ type: 'reply', id: late.id, data: { ok: true } })
  t.match(await client.request('hello', undefined), { type: 'reply', data: 'hi' })
  t.equal(client.pending, 0, 'nothing answered the late reply')
})

test('asks pending when the connection closes reject with FST_RT_ACK_CLOSED; a closed connection rejects at once', async (t) => {
  const { app, opened } = await asksServer(t)
  const client = await bareClient(t, app)
  const conn = await opened()
  const first = conn.emitWithAck('confirm', { amount: 1 }, { timeout: 60_000 })
  const second = conn.emitWithAck('notice', { text: 'x' }, { timeout: 60_000 })
  await client.next()
  await client.next()
  await client.close()
  await t.rejects(first, { code: 'FST_RT_ACK_CLOSED', message: "The connection closed before 'confirm' was answered" })
  await t.rejects(second, { code: 'FST_RT_ACK_CLOSED' })
  await waitUntil(() => conn.closed)
  await t.rejects(conn.emitWithAck('confirm', { amount: 1 }), { code: 'FST_RT_ACK_CLOSED' })
})

test('the typed client closing while its listener works rejects the ask with FST_RT_ACK_CLOSED', async (t) => {
  const { app, opened } = await asksServer(t)
  const client = typedClient(t, app)
  const hold = deferred()
  const asked = deferred()
  client.on('confirm', async () => {
    asked.resolve()
    await hold.promise
    return { ok: true }
  })
  const conn = await opened()
  const answer = conn.emitWithAck('confirm', { amount: 1 }, { timeout: 60_000 })
  await asked.promise
  client.close()
  await t.rejects(answer, { code: 'FST_RT_ACK_CLOSED' })
  hold.resolve() // the answer has no socket left to go to
})

test('app.close() rejects pending asks, clears their timers, and an ask nobody awaits is never unhandled', async (t) => {
  const assertClean = guardProcess(t)
  const { app, opened } = await asksServer(t)
  await bareClient(t, app)
  const conn = await opened()
  const timers = (): number => process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length
  const before = timers()
  const answers = [1, 2, 3, 4, 5].map((amount) => conn.emitWithAck('confirm', { amount }, { timeout: 60_000 }))
  conn.emitWithAck('notice', { text: 'nobody awaits this one' }, { timeout: 60_000 })
  t.equal(timers(), before + 6, 'one timer per pending ask')
  await app.close()
  for (const answer of answers) await t.rejects(answer, { code: 'FST_RT_ACK_CLOSED' })
  t.ok(timers() <= before, `the asks' timers are cleared (${before} before, ${timers()} after)`)
  assertClean()
})

test('unknown, duplicate and malformed answer ids are ignored and the connection goes on', async (t) => {
  const { app, opened } = await asksServer(t)
  const client = await bareClient(t, app)
  const conn = await opened()
  const answer = conn.emitWithAck('confirm', { amount: 1 })
  const { id } = await client.next()
  client.send({ type: 'reply', id: 's999', data: { ok: false } })
  client.send({ type: 'reply', id: 7, data: { ok: false } })
  client.send({ type: 'reply', data: { ok: false } })
  client.send({ type: 'error', error: { code: 'X', message: 'no id' } })
  client.send({ type: 'reply', id: { nested: true }, data: {} })
  const refused = await client.next()
  t.match(refused, { type: 'error', error: { code: 'VALIDATION_FAILED', details: [{ path: '/id' }] } }, 'an id of the wrong type is refused as any frame')
  client.send({ type: 'reply', id, data: { ok: true } })
  client.send({ type: 'reply', id, data: { ok: false } })
  t.same(await answer, { ok: true }, 'the first answer settles the ask')
  t.match(await client.request('hello', undefined), { type: 'reply', data: 'hi' })
  t.equal(client.pending, 0, 'unknown and duplicate answers get no answer back')
  t.equal(conn.closed, false)
})

test('maxPendingAcks bounds the asks a connection awaits: one more rejects at once, sending nothing', async (t) => {
  const { app, opened } = await asksServer(t, { maxPendingAcks: 2 })
  const client = await bareClient(t, app)
  const conn = await opened()
  const first = conn.emitWithAck('confirm', { amount: 1 })
  const second = conn.emitWithAck('confirm', { amount: 2 })
  await t.rejects(conn.emitWithAck('confirm', { amount: 3 }), { code: 'FST_RT_ACK_LIMIT' })
  const a = await client.next()
  const b = await client.next()
  client.send({ type: 'reply', id: a.id, data: { ok: true } })
  await first
  // A slot is free again.
  const third = conn.emitWithAck('confirm', { amount: 4 })
  const c = await client.next()
  t.equal(c.data.amount, 4, 'the refused ask was never sent')
  client.send({ type: 'reply', id: b.id, data: { ok: true } })
  client.send({ type: 'reply', id: c.id, data: { ok: false } })
  t.same(await Promise.all([second, third]), [{ ok: true }, { ok: false }])
})

test('an answer that fails the ack schema rejects with FST_RT_ACK_INVALID and is refused with VALIDATION_FAILED', async (t) => {
  const { app, opened } = await asksServer(t)
  const client = await bareClient(t, app)
  const conn = await opened()
  const answer = conn.emitWithAck('confirm', { amount: 1 })
  const { id } = await client.next()
  client.send({ type: 'reply', id, data: { ok: 'yes' } })
  await t.rejects(answer, { code: 'FST_RT_ACK_INVALID', message: /'confirm'.*\/ok/ })
  t.match(await client.next(), { type: 'error', id, error: { code: 'VALIDATION_FAILED', details: [{ path: '/ok' }] } })
  // A typed client whose listener answers badly: the same (its untyped twin sidesteps the types).
  const typed = connectClient(wsUrl(app, '/asks'), { WebSocket, reconnect: false })
  t.teardown(() => typed.close())
  const refusals: string[] = []
  typed.on('error', (err) => { refusals.push(err.code) })
  typed.on('confirm', () => 'not an object')
  const conn2 = await opened()
  await t.rejects(conn2.emitWithAck('confirm', { amount: 1 }), { code: 'FST_RT_ACK_INVALID' })
  await waitUntil(() => refusals.length === 1)
  t.same(refusals, ['VALIDATION_FAILED'], 'the client hears of it on `error`')
})

test('an answer to an ask made in onOpen does not wait behind onOpen', async (t) => {
  const answers: unknown[] = []
  const { app } = await asksServer(t, {}, async (conn) => {
    answers.push(await conn.emitWithAck('confirm', { amount: 5 }, { timeout: 5_000 }))
  })
  const client = typedClient(t, app)
  client.on('confirm', ({ amount }) => ({ ok: amount === 5 }))
  t.equal(await client.request('hello'), 'hi', 'handled once onOpen has its answer')
  t.same(answers, [{ ok: true }])
})

test('emitWithAck checks its timeout', async (t) => {
  const { app, opened } = await asksServer(t)
  await bareClient(t, app)
  const conn = await opened()
  for (const timeout of [0, -1, 1.5, 2 ** 31, Number.NaN]) {
    t.throws(() => conn.emitWithAck('confirm', { amount: 1 }, { timeout }), { code: 'FST_RT_INVALID_OPTION' }, `timeout ${timeout}`)
  }
})

test('a raw route rejects emitWithAck with FST_RT_ACK_UNSUPPORTED: its frames go to onMessage', async (t) => {
  const rawConn = deferred<Connection>()
  const app = await build(t, (app) => {
    app.ws('/raw', { raw: true, onMessage: () => {}, onOpen: (conn) => { rawConn.resolve(conn) } })
  })
  await connect(t, app, '/raw')
  await t.rejects((await rawConn.promise).emitWithAck('x', 1), { code: 'FST_RT_ACK_UNSUPPORTED' })
})

test('ackTimeout, maxPendingAcks and a route\'s acks are validated', async (t) => {
  for (const options of [{ ackTimeout: 0 }, { ackTimeout: 2 ** 31 }, { ackTimeout: '10' }, { maxPendingAcks: 0 }, { maxPendingAcks: 1.5 }]) {
    await t.rejects(build(t, () => {}, { realtime: options as RealtimeOptions }), { code: 'FST_RT_INVALID_OPTION' }, JSON.stringify(options))
  }
  for (const acks of [5, null, { confirm: 'yes' }]) {
    await t.rejects(build(t, (app) => { app.ws('/bad', { acks: acks as any }) }), { code: 'FST_RT_INVALID_OPTION' }, JSON.stringify(acks))
  }
})
