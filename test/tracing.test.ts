import diagnosticsChannel from 'node:diagnostics_channel'
import { test } from 'tap'
import { Type } from 'typebox'
import { RealtimeError, WireErrorCode, type Connection } from '../lib/index.js'
import { build, connect, type TestContext } from './helper.js'
import { redisFor } from './support/redis.js'

/*
 * The diagnostics channels, subscribed by name as an APM would, driven by
 * real ws clients.
 */

interface Seen { event: string, type: string, route: string, id: unknown, connectionId: string, result?: unknown, error?: unknown }

/** Subscribes to the message tracing channel for the test's duration; returns what it saw, in order. */
function traceMessages (t: TestContext): Seen[] {
  const seen: Seen[] = []
  const record = (event: string) => (message: unknown): void => {
    const context = message as { type: string, route: string, id: unknown, connection: Connection, result?: unknown, error?: unknown }
    seen.push({
      event,
      type: context.type,
      route: context.route,
      id: context.id,
      connectionId: context.connection.id,
      ...('result' in context ? { result: context.result } : {}),
      ...('error' in context ? { error: (context.error as Error).message } : {})
    })
  }
  const handlers = {
    start: record('start'),
    end: record('end'),
    asyncStart: record('asyncStart'),
    asyncEnd: record('asyncEnd'),
    error: record('error')
  }
  const channel = diagnosticsChannel.tracingChannel('fastify-realtime.message')
  channel.subscribe(handlers)
  t.teardown(() => channel.unsubscribe(handlers))
  return seen
}

function subscribe (t: TestContext, name: string): unknown[] {
  const seen: unknown[] = []
  const listener = (message: unknown): void => { seen.push(message) }
  diagnosticsChannel.subscribe(name, listener)
  t.teardown(() => diagnosticsChannel.unsubscribe(name, listener))
  return seen
}

const route = {
  messages: {
    echo: { data: Type.String(), reply: Type.String(), handler: (_conn: unknown, text: string) => text },
    later: { reply: Type.Number(), handler: async () => { await new Promise((resolve) => setImmediate(resolve)); return 7 } },
    boom: { handler: () => { throw new Error('sync bug') } },
    rejects: { handler: async () => { throw new RealtimeError(WireErrorCode.FORBIDDEN, 'async no') } }
  }
}

test('the message tracing channel: start and end around a handler, error when it throws, asyncStart/asyncEnd when its promise settles', async (t) => {
  const seen = traceMessages(t)
  const app = await build(t, (app) => { app.ws('/traced', route as never) })
  const client = await connect(t, app, '/traced')
  t.same(await client.request('echo', 'x', 'a1'), { type: 'reply', id: 'a1', data: 'x' })
  const connectionId = [...app.realtime.namespace('/traced').connections()][0]!.id
  const base = { route: '/traced', connectionId }

  t.same(seen.splice(0), [
    { event: 'start', type: 'echo', id: 'a1', ...base },
    { event: 'end', type: 'echo', id: 'a1', result: 'x', ...base }
  ], 'a synchronous handler: start, end with its result')

  t.match(await client.request('boom', null, 'b1'), { type: 'error', error: { code: 'INTERNAL' } })
  t.same(seen.splice(0), [
    { event: 'start', type: 'boom', id: 'b1', ...base },
    { event: 'error', type: 'boom', id: 'b1', error: 'sync bug', ...base },
    { event: 'end', type: 'boom', id: 'b1', error: 'sync bug', ...base }
  ], 'a throwing handler: start, error, end')

  t.match(await client.request('later', null, 'l1'), { type: 'reply', data: 7 })
  t.match(seen.splice(0), [
    { event: 'start', type: 'later', id: 'l1', ...base },
    { event: 'end', type: 'later', id: 'l1', result: Promise, ...base },
    { event: 'asyncStart', type: 'later', id: 'l1', result: 7, ...base },
    { event: 'asyncEnd', type: 'later', id: 'l1', result: 7, ...base }
  ], 'an async handler: start, end with the promise, then asyncStart and asyncEnd with what it resolved to')

  t.match(await client.request('rejects', null, 'r1'), { type: 'error', error: { code: 'FORBIDDEN' } })
  t.match(seen.splice(0), [
    { event: 'start', type: 'rejects' },
    { event: 'end', type: 'rejects' },
    { event: 'error', type: 'rejects', error: 'async no' },
    { event: 'asyncStart', type: 'rejects', error: 'async no' },
    { event: 'asyncEnd', type: 'rejects', error: 'async no' }
  ], 'a rejecting handler: error, asyncStart, asyncEnd')

  client.send({ type: 'echo', data: 'no id' })
  t.match(await client.request('echo', 'y'), { type: 'reply' })
  t.match(seen.splice(0).filter((entry) => entry.event === 'start'), [{ id: undefined }, { type: 'echo' }], 'a message without an id')
})

test('connection open and close channels carry the connection and route; close its code and reason', async (t) => {
  const opened = subscribe(t, 'fastify-realtime.connection.open') as Array<{ connection: Connection, route: string }>
  const closed = subscribe(t, 'fastify-realtime.connection.close') as Array<{ connection: Connection, route: string, code: number, reason: string }>
  const app = await build(t, (app) => { app.ws('/watched', { messages: {} }) })
  const client = await connect(t, app, '/watched')
  t.equal(opened.length, 1)
  t.equal(opened[0]!.route, '/watched')
  const conn = opened[0]!.connection
  t.equal(app.realtime.namespace('/watched').connection(conn.id), conn, 'the live connection')
  await client.close(4000)
  await new Promise<void>((resolve) => { if (closed.length > 0) resolve(); else conn.socket.once('close', () => resolve()) })
  t.equal(closed.length, 1)
  t.equal(closed[0]!.connection, conn)
  t.equal(closed[0]!.route, '/watched')
  t.equal(closed[0]!.code, 4000)
  t.equal(closed[0]!.reason, '')
})

test('broker up and down channels', async (t) => {
  const up = subscribe(t, 'fastify-realtime.broker.up')
  const down = subscribe(t, 'fastify-realtime.broker.down')
  const redis = await redisFor(t)
  const app = await build(t, () => {}, { realtime: { redis: redis.url } })
  t.same(up, [{ broker: 'redis' }], 'up once started')
  const wentDown = new Promise((resolve) => app.realtime.once('broker:down', resolve))
  await redis.stop()
  await wentDown
  t.same(down, [{ broker: 'redis' }])
})
