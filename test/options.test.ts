import { test } from 'tap'
import Fastify from 'fastify'
import { Type } from 'typebox'
import realtime, { DEFAULTS, defineRoute, LocalBroker } from '../lib/index.js'
import { resolveOptions } from '../lib/validate-options.js'
import { build, connect } from './helper.js'

test('defaults', async (t) => {
  const options = resolveOptions()
  t.equal(options.maxPayload, 65536)
  t.same(options.heartbeat, { interval: 30_000, timeout: 10_000 })
  t.equal(options.upgradeTimeout, 10_000)
  t.equal(options.allowedOrigins, 'same-host')
  t.same(options.redactQueryParams, ['token', 'access_token'])
  t.equal(options.maxQueuedMessages, 1024)
  t.equal(options.closeTimeout, 2000)
  t.equal(options.broker, undefined)
  t.equal(options.userId({ id: 7 }), '7')
  t.equal(options.userId({ id: 'u' }), 'u')
  t.equal(options.userId({ id: {} }), undefined)
  t.equal(options.userId(undefined), undefined)
  t.same(DEFAULTS.heartbeat, { interval: 30_000, timeout: 10_000 })
})

test('bad options fail register with FST_RT_INVALID_OPTION', async (t) => {
  const bad: Array<[string, Record<string, unknown>]> = [
    ['maxPayload', { maxPayload: 0 }],
    ['maxPayload', { maxPayload: 1.5 }],
    ['heartbeat', { heartbeat: 'often' }],
    ['heartbeat.interval', { heartbeat: { interval: -1 } }],
    ['heartbeat.timeout', { heartbeat: { interval: 100, timeout: 200 } }],
    ['upgradeTimeout', { upgradeTimeout: -5 }],
    ['allowedOrigins', { allowedOrigins: 'https://a.example' }],
    ['allowedOrigins', { allowedOrigins: ['not an origin'] }],
    ['allowedOrigins', { allowedOrigins: ['https://a.example/path'] }],
    ['redactQueryParams', { redactQueryParams: [''] }],
    ['maxQueuedMessages', { maxQueuedMessages: 0 }],
    ['closeTimeout', { closeTimeout: '1s' }],
    ['userId', { userId: 'id' }],
    ['broker', { broker: {} }]
  ]
  for (const [name, options] of bad) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(realtime, options as never).ready() }, { code: 'FST_RT_INVALID_OPTION', message: new RegExp(`'${name.replace('.', '\\.')}`) }, name)
    await app.close()
  }
})

test('route declarations are checked when declared', async (t) => {
  await build(t, (app) => {
    t.throws(() => app.ws('no-slash', {}), { code: 'FST_RT_INVALID_OPTION' })
    t.throws(() => app.ws('/r', { messages: { ping: { handler: () => {} } } }), { code: 'FST_RT_RESERVED_TYPE' })
    t.throws(() => app.ws('/r2', { messages: { say: {} } } as never), { code: 'FST_RT_INVALID_OPTION' })
    t.throws(() => app.ws('/r3', { raw: true } as never), { code: 'FST_RT_INVALID_OPTION' })
    t.throws(() => app.ws('/r4', { heartbeat: { interval: 10, timeout: 20 } }), { code: 'FST_RT_INVALID_OPTION' })
    app.ws('/dup', {})
    t.throws(() => app.ws('/dup', {}), { code: 'FST_RT_INVALID_OPTION' })
  })
})

test('a custom userId function decides who a connection belongs to', async (t) => {
  const app = await build(t, (app) => {
    app.ws('/u', {
      preValidation: async (request) => { (request as { user?: unknown }).user = { sub: 'subject-1' } }
    })
  }, { realtime: { userId: (user) => (user as { sub: string }).sub } })
  const client = await connect(t, app, '/u')
  t.equal(app.realtime.userConnections('subject-1').length, 1)
  await app.realtime.disconnectUser('subject-1')
  t.same(await client.closed, { code: 4403, reason: 'disconnected' })
})

test('a custom broker receives every publish', async (t) => {
  const published: string[] = []
  class RecordingBroker extends LocalBroker {
    override publish (packet: Parameters<LocalBroker['publish']>[0]): Promise<void> {
      published.push(String(packet.frame))
      return super.publish(packet)
    }
  }
  const app = await build(t, (app) => { app.ws('/b', { events: {} }) }, { realtime: { broker: new RecordingBroker() } })
  t.equal(app.realtime.brokerStatus, 'up')
  await app.realtime.namespace('/b').emit('hello', { n: 1 })
  t.same(published, ['{"type":"hello","data":{"n":1}}'])
})

test('works inside an encapsulated plugin with a prefix', async (t) => {
  const routeValue = defineRoute({ path: '/value', events: {} })
  const app = await build(t, async (app) => {
    await app.register(async (child) => {
      child.addHook('onRequest', async (request, reply) => {
        if (request.headers['x-key'] !== 'k') await reply.code(401).send()
      })
      child.ws('/live', {})
      child.ws(routeValue)
    }, { prefix: '/api' })
  })
  t.ok(app.realtime.namespace('/api/live'))
  t.equal(app.realtime.namespace(routeValue).path, '/api/value', 'a route value finds its prefixed namespace')
  t.throws(() => app.realtime.namespace(defineRoute({ path: '/never' })), { code: 'FST_RT_UNKNOWN_NAMESPACE' })
  t.throws(() => app.realtime.namespace('/live'), { code: 'FST_RT_UNKNOWN_NAMESPACE' }, 'a path is the full, prefixed path')
  const client = await connect(t, app, '/api/live', { headers: { 'x-key': 'k' } })
  client.send({ type: 'ping' })
  t.same(await client.next(), { type: 'pong' })
})

test('one route value registered under two prefixes is refused, so namespace(route) is never ambiguous', async (t) => {
  const routeValue = defineRoute({ path: '/chat', events: {} })
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime)
  await app.register(async (v1) => { v1.ws(routeValue) }, { prefix: '/v1' })
  await app.register(async (v2) => {
    t.throws(() => v2.ws(routeValue), { code: 'FST_RT_INVALID_OPTION', message: /\/v1\/chat/ })
  }, { prefix: '/v2' })
  await app.ready()
  t.equal(app.realtime.namespace(routeValue).path, '/v1/chat')
})

test('an unknown option is refused at register, not ignored', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(realtime, { bogus: 1 } as never).ready() },
    { code: 'FST_RT_INVALID_OPTION', message: /'bogus'/ })
})

test('a second registration is refused, in the same context or a child', async (t) => {
  const same = Fastify()
  t.teardown(() => same.close())
  same.register(realtime)
  same.register(realtime)
  await t.rejects(async () => { await same.ready() }, { code: 'FST_RT_ALREADY_REGISTERED' })

  const child = Fastify()
  t.teardown(() => child.close())
  child.register(realtime)
  child.register(async (scope) => { await scope.register(realtime) })
  await t.rejects(async () => { await child.ready() }, { code: 'FST_RT_ALREADY_REGISTERED' })
})

test('WebSocket server options are refused when @fastify/websocket was registered first', async (t) => {
  const { default: websocket } = await import('@fastify/websocket')
  for (const options of [{ maxPayload: 1024 }, { perMessageDeflate: true }]) {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(websocket)
    await t.rejects(async () => { await app.register(realtime, options).ready() },
      { code: 'FST_RT_INVALID_OPTION', message: new RegExp(`'${Object.keys(options)[0]}'`) })
  }
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  await app.register(realtime, { closeTimeout: 100 })
  t.ok(app.hasDecorator('realtime'), 'other options are fine')
})

test('a route cannot declare an event named like a protocol frame or a client event', async (t) => {
  await build(t, (app) => {
    for (const name of ['error', 'reply', 'pong', 'ping', 'state', 'session']) {
      t.throws(() => app.ws(`/events-${name}`, { events: { [name]: Type.String() } }),
        { code: 'FST_RT_RESERVED_EVENT', message: new RegExp(`'${name}'`) }, name)
    }
    const route = defineRoute({ path: '/value-events', events: { state: Type.String() } })
    t.throws(() => app.ws(route), { code: 'FST_RT_RESERVED_EVENT' }, 'a route value too')
    app.ws('/fine', { events: { said: Type.String() } })
    t.throws(() => app.ws('/own-presence', { presence: { events: true }, events: { presence: Type.String() } }),
      { code: 'FST_RT_RESERVED_EVENT', message: /'presence'/ }, 'presence, where the plugin sends presence events')
    app.ws('/presence-without-events', { presence: true, events: { presence: Type.String() } })
  })
})
