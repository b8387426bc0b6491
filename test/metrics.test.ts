import { metrics } from '@opentelemetry/api'
import {
  AggregationTemporality, DataPointType, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type MetricData
} from '@opentelemetry/sdk-metrics'
import { test } from 'tap'
import { Type } from 'typebox'
import WebSocket from 'ws'
import { RealtimeError, WireErrorCode } from '../lib/index.js'
import { INSTRUMENT_LIST, METER_NAME } from '../lib/metrics.js'
import { build, connect, refusedUpgrade, TestClient, waitUntil, wsUrl, type TestContext } from './helper.js'
import { redisFor } from './support/redis.js'

/*
 * The OpenTelemetry SDK's own MeterProvider and in-memory exporter, set as
 * the global provider before any app registers the plugin (as an
 * application installs its SDK first). Values are cumulative over the
 * file: each test uses its own route paths.
 */

const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 })
const provider = new MeterProvider({ readers: [reader] })
metrics.setGlobalMeterProvider(provider)

/** The plugin's metrics as the SDK exports them now, by instrument name. */
async function collect (): Promise<Map<string, MetricData>> {
  exporter.reset()
  await reader.forceFlush()
  const byName = new Map<string, MetricData>()
  for (const resource of exporter.getMetrics()) {
    for (const scope of resource.scopeMetrics) {
      if (scope.scope.name !== METER_NAME) continue
      for (const metric of scope.metrics) byName.set(metric.descriptor.name, metric)
    }
  }
  return byName
}

/** The summed value (counters, gauges) or count (histograms) of the points whose attributes include `attributes`. */
function value (all: Map<string, MetricData>, name: string, attributes: Record<string, unknown>): number {
  const metric = all.get(name)
  if (metric === undefined) return 0
  let total = 0
  for (const point of metric.dataPoints) {
    const matches = Object.entries(attributes).every(([key, expected]) => point.attributes[key] === expected)
    if (!matches) continue
    if (metric.dataPointType === DataPointType.HISTOGRAM) total += (point.value as { count: number }).count
    else total += point.value as number
  }
  return total
}

/** Every recorded instrument is one of the table's, with its unit, description and only its attributes. */
function checkAgainstTable (t: TestContext, all: Map<string, MetricData>): void {
  for (const [name, metric] of all) {
    const spec = INSTRUMENT_LIST.find((entry) => entry.name === name)
    t.ok(spec, `${name} is declared`)
    if (spec === undefined) continue
    t.equal(metric.descriptor.unit, spec.unit, `${name}: unit`)
    t.equal(metric.descriptor.description, spec.description, `${name}: description`)
    for (const point of metric.dataPoints) {
      for (const key of Object.keys(point.attributes)) t.ok(spec.attributes.includes(key), `${name}: attribute ${key} is documented`)
    }
  }
}

const metricsRoute = {
  onRequest: async (request: { query: unknown }, reply: { code: (n: number) => { send: (b: unknown) => unknown } }) => {
    if ((request.query as { deny?: string }).deny !== undefined) return reply.code(401).send({ error: 'no' })
  },
  messages: {
    echo: { data: Type.Object({ text: Type.String() }), reply: Type.String(), handler: (_conn: unknown, { text }: { text: string }) => text },
    later: { reply: Type.Number(), handler: async () => { await new Promise((resolve) => setImmediate(resolve)); return 1 } },
    boom: { handler: () => { throw new Error('handler bug') } },
    denied: { handler: () => { throw new RealtimeError(WireErrorCode.FORBIDDEN, 'no') } },
    limited: { rateLimit: { max: 1, interval: 60_000, maxViolations: 0 }, handler: () => null },
    join: { data: Type.Object({ room: Type.String() }), handler: (conn: any, { room }: { room: string }) => conn.join(room) },
    say: {
      data: Type.Object({ room: Type.String() }),
      handler: (conn: any, { room }: { room: string }) => { conn.to(room).emit('said', room) }
    },
    self: { handler: (conn: any) => { conn.emit('said', 'you') } }
  },
  events: { said: Type.String() }
}

test('connections, upgrades, messages, latency, events, deliveries and broker state, with the documented attributes', async (t) => {
  const app = await build(t, (app) => { app.ws('/m', metricsRoute as never) })
  const route = '/m'
  const a = await connect(t, app, route)
  const b = await connect(t, app, route)
  t.equal((await refusedUpgrade(app, '/m?deny=1')).statusCode, 401)

  let all = await collect()
  t.equal(value(all, 'fastify_realtime.connections.open', { route }), 2, 'two connections open')
  t.equal(value(all, 'fastify_realtime.upgrades', { route, outcome: 'accepted', 'http.response.status_code': 101 }), 2)
  t.equal(value(all, 'fastify_realtime.upgrades', { route, outcome: 'refused', 'http.response.status_code': 401 }), 1)
  t.equal(value(all, 'fastify_realtime.broker.up', { broker: 'memory' }), 1, 'the broker is up')

  t.same(await a.request('echo', { text: 'hi' }, 'e1'), { type: 'reply', id: 'e1', data: 'hi' })
  t.same(await a.request('echo', { text: 'hi' }, 'e2'), { type: 'reply', id: 'e2', data: 'hi' })
  t.match(await a.request('later', null), { type: 'reply', data: 1 })
  t.match(await a.request('boom', null), { type: 'error', error: { code: 'INTERNAL' } })
  t.match(await a.request('denied', null), { type: 'error', error: { code: 'FORBIDDEN' } })
  t.match(await a.request('echo', { text: 1 }), { type: 'error', error: { code: 'VALIDATION_FAILED' } })
  t.match(await a.request('nope', null), { type: 'error', error: { code: 'UNKNOWN_TYPE' } })
  t.match(await a.request('limited', null), { type: 'reply' })
  t.match(await a.request('limited', null), { type: 'error', error: { code: 'RATE_LIMITED' } })
  a.send({ type: 'ping', id: 'p' })
  t.same(await a.next(), { type: 'pong', id: 'p' })
  a.ws.send('not json')
  t.match(await a.next(), { type: 'error' })

  await a.request('join', { room: 'r' })
  await b.request('join', { room: 'r' })
  await a.request('say', { room: 'r' })
  t.same(await b.next(), { type: 'said', data: 'r' })
  await a.request('self', null)
  t.same(await a.next(), { type: 'said', data: 'you' })

  all = await collect()
  const messages = 'fastify_realtime.messages.inbound'
  t.equal(value(all, messages, { route, 'message.type': 'echo', outcome: 'handled' }), 2)
  t.equal(value(all, messages, { route, 'message.type': 'later', outcome: 'handled' }), 1, 'an async handler')
  t.equal(value(all, messages, { route, 'message.type': 'boom', outcome: 'failed', 'error.type': 'INTERNAL' }), 1)
  t.equal(value(all, messages, { route, 'message.type': 'denied', outcome: 'failed', 'error.type': 'FORBIDDEN' }), 1)
  t.equal(value(all, messages, { route, 'message.type': 'echo', outcome: 'refused', 'error.type': 'VALIDATION_FAILED' }), 1)
  t.equal(value(all, messages, { route, 'message.type': 'limited', outcome: 'refused', 'error.type': 'RATE_LIMITED' }), 1)
  t.equal(value(all, messages, { route, 'message.type': 'ping', outcome: 'handled' }), 1)
  const unknown = all.get(messages)!.dataPoints.filter((point) => point.attributes['error.type'] === 'UNKNOWN_TYPE')
  t.same(unknown.map((point) => point.attributes), [{ route, outcome: 'refused', 'error.type': 'UNKNOWN_TYPE' }],
    'an undeclared type is not an attribute value (a client cannot grow the series)')
  t.equal(value(all, messages, { route, outcome: 'refused', 'error.type': 'BAD_JSON' }), 1, 'the unreadable frame')
  t.equal(value(all, 'fastify_realtime.rate_limit.refusals', { route, 'message.type': 'limited' }), 1)

  const duration = all.get('fastify_realtime.messages.duration')!
  t.equal(duration.dataPointType, DataPointType.HISTOGRAM)
  t.equal(value(all, 'fastify_realtime.messages.duration', { route, 'message.type': 'echo' }), 2, 'one latency per handled echo')
  t.equal(value(all, 'fastify_realtime.messages.duration', { route, 'message.type': 'boom' }), 1)
  t.equal(value(all, 'fastify_realtime.messages.duration', { route, 'message.type': 'later' }), 1)

  t.equal(value(all, 'fastify_realtime.events.outbound', { route, target: 'broadcast' }), 1, 'say broadcast once')
  t.equal(value(all, 'fastify_realtime.events.outbound', { route, target: 'connection' }), 1, 'self emitted once')
  t.equal(value(all, 'fastify_realtime.deliveries', { route, origin: 'local' }), 1, 'to b only (a is the sender)')
  checkAgainstTable(t, all)

  await b.close()
  await waitUntil(() => app.realtime.connectionCount === 1)
  all = await collect()
  t.equal(value(all, 'fastify_realtime.connections.open', { route }), 1, 'one connection left')
})

test('slow consumers closed and dropped, heartbeat terminations', async (t) => {
  const app = await build(t, (app) => {
    app.ws('/slow-close', { maxBufferedBytes: 1024, slowConsumer: 'close', messages: {}, events: { big: Type.String() } })
    app.ws('/slow-drop', { maxBufferedBytes: 1024, slowConsumer: 'drop', messages: {}, events: { big: Type.String() } })
    app.ws('/beat', { heartbeat: { interval: 50, timeout: 50 }, messages: {} })
  })
  const big = 'x'.repeat(64 * 1024)
  for (const [path, slowConsumer] of [['/slow-close', 'close'], ['/slow-drop', 'drop']] as const) {
    const client = await connect(t, app, path)
    // The client stops reading: the server's buffer fills past maxBufferedBytes.
    ;(client.ws as unknown as { _socket: { pause: () => void } })._socket.pause()
    const namespace = app.realtime.namespace(path)
    await waitUntil(async () => {
      await namespace.emit('big' as never, big as never)
      return slowConsumer === 'drop' ? app.realtime.droppedMessages > 0 : app.realtime.slowConsumersClosed > 0
    })
  }
  // A client that never answers pings.
  const silent = new TestClient(new WebSocket(wsUrl(app, '/beat'), { autoPong: false }))
  t.teardown(() => silent.ws.terminate())
  await silent.closed

  const all = await collect()
  t.equal(value(all, 'fastify_realtime.slow_consumers.closed', { route: '/slow-close' }), 1)
  t.ok(value(all, 'fastify_realtime.slow_consumers.dropped', { route: '/slow-drop' }) >= 1)
  t.equal(value(all, 'fastify_realtime.slow_consumers.dropped', { route: '/slow-drop' }), app.realtime.droppedMessages,
    'the metric and app.realtime.droppedMessages agree')
  t.equal(value(all, 'fastify_realtime.heartbeat.terminations', { route: '/beat' }), 1)
  checkAgainstTable(t, all)
})

test('Redis: broker state and outages, publish latency, publishes that reached nobody', async (t) => {
  const redis = await redisFor(t)
  const app = await build(t, (app) => { app.ws('/redis-metrics', { messages: {}, events: { note: Type.String() } }) },
    { realtime: { redis: redis.url } })
  const client = await connect(t, app, '/redis-metrics')
  const namespace = app.realtime.namespace('/redis-metrics')
  await namespace.emit('note' as never, 'to everyone' as never)
  t.same(await client.next(), { type: 'note', data: 'to everyone' })
  // Nobody on any instance is in this room, so no instance subscribes to its channel.
  await namespace.to('empty-room').emit('note' as never, 'to nobody' as never)

  let all = await collect()
  t.equal(value(all, 'fastify_realtime.broker.up', { broker: 'redis' }), 1)
  t.equal(value(all, 'fastify_realtime.redis.publish.duration', { outcome: 'ok' }), 2, 'two publishes timed')
  t.equal(value(all, 'fastify_realtime.redis.published_to_nobody', {}), 1)

  const down = new Promise((resolve) => app.realtime.once('broker:down', resolve))
  await redis.stop()
  await down
  all = await collect()
  t.equal(value(all, 'fastify_realtime.broker.up', { broker: 'redis' }), 0, 'the gauge reads 0 while Redis is away')
  t.equal(value(all, 'fastify_realtime.broker.outages', { broker: 'redis' }), 1)
  checkAgainstTable(t, all)
})
