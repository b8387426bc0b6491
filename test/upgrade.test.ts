import { test } from 'tap'
import { Type } from 'typebox'
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import realtime from '../lib/index.js'
import { build, connect, deferred, guardProcess, httpUrl, refusedUpgrade } from './helper.js'

declare module 'fastify' {
  interface FastifyRequest {
    user: { id: string }
  }
}

async function requireToken (request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const token = (request.query as { token?: string }).token
  if (token !== 'good') {
    await reply.code(401).send({ message: 'bad token' })
    return
  }
  request.user = { id: 'alice' }
}

test('REST and WebSocket routes share one server and one port', async (t) => {
  const app = await build(t, (app) => {
    app.get('/health', async () => ({ ok: true }))
    app.ws('/chat', { messages: { who: { reply: Type.String(), handler: () => 'me' } } })
  })
  const response = await fetch(httpUrl(app, '/health'))
  t.equal(response.status, 200)
  t.same(await response.json(), { ok: true })
  const client = await connect(t, app, '/chat')
  t.match(await client.request('who', undefined), { type: 'reply', data: 'me' })
})

test('auth hooks and schemas refuse before the upgrade, never with a 101', async (t) => {
  const opened: string[] = []
  const app = await build(t, (app) => {
    app.ws('/token', { preValidation: requireToken, onOpen: () => { opened.push('token') } })
    app.ws('/forbidden', {
      onRequest: async (_request, reply) => { await reply.code(403).send({ message: 'no' }) },
      onOpen: () => { opened.push('forbidden') }
    })
    app.ws('/schema', {
      schema: { querystring: Type.Object({ room: Type.String({ minLength: 3 }) }) },
      onOpen: () => { opened.push('schema') }
    })
    app.ws('/headers', {
      schema: { headers: Type.Object({ 'x-client': Type.Literal('v1') }) },
      onOpen: () => { opened.push('headers') }
    })
    app.ws('/prehandler', {
      preHandler: async (_request, reply) => { await reply.code(403).send({ message: 'later' }) },
      onOpen: () => { opened.push('prehandler') }
    })
  })
  const noToken = await refusedUpgrade(app, '/token')
  t.same([noToken.statusCode, noToken.upgraded], [401, false], 'no token: 401')
  t.same(JSON.parse(noToken.body), { message: 'bad token' })
  t.same((await refusedUpgrade(app, '/token?token=bad')).statusCode, 401, 'bad token: 401')
  t.same((await refusedUpgrade(app, '/forbidden')).statusCode, 403, 'onRequest refusal: 403')
  t.same((await refusedUpgrade(app, '/schema?room=ab')).statusCode, 400, 'querystring schema: 400')
  t.same((await refusedUpgrade(app, '/headers', { headers: { 'x-client': 'v0' } })).statusCode, 400, 'headers schema: 400')
  t.same((await refusedUpgrade(app, '/prehandler')).statusCode, 403, 'preHandler refusal: 403')
  t.same(opened, [], 'no refused request reached onOpen')
  t.equal(app.realtime.connectionCount, 0)

  await connect(t, app, '/token?token=good')
  await connect(t, app, '/schema?room=abc')
  await connect(t, app, '/headers', { headers: { 'x-client': 'v1' } })
  t.same(opened.sort(), ['headers', 'schema', 'token'])
})

test('what a hook puts on the request is reachable from the connection (injected, no port)', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime)
  app.ws('/me', {
    preValidation: requireToken,
    messages: {
      whoami: {
        reply: Type.Object({ user: Type.String(), userId: Type.String(), query: Type.Unknown() }),
        handler: (conn) => ({ user: conn.user.id, userId: conn.userId ?? '', query: conn.query })
      }
    }
  })
  await app.ready()
  const refused = await app.realtime.inject('/me', { query: { token: 'bad' } }).catch((err: { statusCode?: number }) => err)
  t.equal((refused as { statusCode?: number }).statusCode, 401, 'the hook refuses with its status')
  const client = await app.realtime.inject('/me', { query: { token: 'good' } })
  t.same(await client.request('whoami', null), { user: 'alice', userId: 'alice', query: { token: 'good' } })
  t.equal(app.server.listening, false)
})

test('the upgrade request reaches onOpen, and is released afterwards unless keepRequest', async (t) => {
  const seen: Array<[string, boolean, boolean]> = []
  const app = await build(t, (app) => {
    app.ws('/released', {
      onOpen: (conn, request) => { seen.push([request.headers['x-trace'] as string, conn.request === request, false]) },
      messages: { has: { reply: Type.Boolean(), handler: (conn) => conn.request !== undefined } }
    })
    app.ws('/kept', {
      keepRequest: true,
      onOpen: async (conn, request) => { seen.push([request.headers['x-trace'] as string, conn.request === request, true]) },
      messages: { has: { reply: Type.String(), handler: (conn) => conn.request?.headers['x-trace'] as string } }
    })
    app.ws('/ip/:name', { messages: { who: { reply: Type.Unknown(), handler: (conn) => ({ ip: conn.ip, params: conn.params }) } } })
  })
  const released = await connect(t, app, '/released', { headers: { 'x-trace': 'one' } })
  t.equal((await released.request('has', null)).data, false, 'released after onOpen')
  const kept = await connect(t, app, '/kept', { headers: { 'x-trace': 'two' } })
  t.equal((await kept.request('has', null)).data, 'two', 'kept for the connection\'s life')
  t.same(seen, [['one', true, false], ['two', true, true]])
  const ip = await connect(t, app, '/ip/x')
  t.same((await ip.request('who', null)).data, { ip: '127.0.0.1', params: { name: 'x' } })
})

test('a hook that throws answers with Fastify error handling, and the process lives', async (t) => {
  const assertClean = guardProcess(t)
  const app = await build(t, (app) => {
    app.setErrorHandler(async (_error, _request, reply) => reply.code(503).send({ message: 'auth backend down' }))
    app.ws('/broken', { preValidation: async () => { throw new Error('auth service exploded') } })
    app.get('/health', async () => ({ ok: true }))
  })
  const refusal = await refusedUpgrade(app, '/broken')
  t.equal(refusal.statusCode, 503)
  t.notMatch(refusal.body, /exploded/)
  t.equal((await fetch(httpUrl(app, '/health'))).status, 200)
  assertClean()
})

test('origin allowlist: exact match, 403 before upgrade otherwise', async (t) => {
  const app = await build(t, (app) => {
    app.ws('/chat', {})
    app.ws('/open', { allowedOrigins: ['https://partner.example'] })
  }, { realtime: { allowedOrigins: ['https://app.example.com', 'http://localhost:3000'] } })
  const evil = await refusedUpgrade(app, '/chat', { origin: 'https://evil.example' })
  t.same([evil.statusCode, evil.upgraded], [403, false])
  t.match(JSON.parse(evil.body), { code: 'FST_RT_ORIGIN_FORBIDDEN' })
  t.equal((await refusedUpgrade(app, '/chat', { origin: 'https://app.example.com.evil.com' })).statusCode, 403, 'suffix trick refused')
  t.equal((await refusedUpgrade(app, '/chat', { origin: 'http://app.example.com' })).statusCode, 403, 'scheme must match')
  t.equal((await refusedUpgrade(app, '/chat', { origin: 'https://app.example.com:8443' })).statusCode, 403, 'port must match')
  t.equal((await refusedUpgrade(app, '/chat', { origin: 'null' })).statusCode, 403, 'opaque origin refused')
  await connect(t, app, '/chat', { origin: 'https://app.example.com' })
  await connect(t, app, '/chat', { origin: 'https://APP.example.com:443' })
  await connect(t, app, '/chat', { origin: 'http://localhost:3000' })
  await connect(t, app, '/chat')
  t.pass('allowed origins and clients without Origin upgrade')
  t.equal((await refusedUpgrade(app, '/open', { origin: 'https://app.example.com' })).statusCode, 403, 'route override replaces the list')
  await connect(t, app, '/open', { origin: 'https://partner.example' })
})

test('an upgrade whose hook hangs is refused with 503 after upgradeTimeout', async (t) => {
  const assertClean = guardProcess(t)
  const held = deferred()
  const entered = deferred()
  let opened = 0
  const app = await build(t, (app) => {
    app.ws('/slow', {
      preValidation: async () => {
        entered.resolve()
        await held.promise
      },
      onOpen: () => { opened++ }
    })
  }, { realtime: { upgradeTimeout: 200 } })
  const refusal = refusedUpgrade(app, '/slow')
  await entered.promise
  const { statusCode, body, upgraded } = await refusal
  t.same([statusCode, upgraded], [503, false])
  t.match(JSON.parse(body), { code: 'FST_RT_UPGRADE_TIMEOUT' })
  // The hook finishes late: nothing opens, nothing throws.
  held.resolve()
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(opened, 0)
  t.equal(app.realtime.connectionCount, 0)
  // A prompt upgrade on the same server is unaffected.
  const fast = await build(t, (app) => { app.ws('/fast', {}) }, { realtime: { upgradeTimeout: 200 } })
  const client = await connect(t, fast, '/fast')
  client.send({ type: 'ping' })
  t.same(await client.next(), { type: 'pong' }, 'the deadline does not touch an upgraded socket')
  assertClean()
})

test('a query-string token is redacted from the logs, and hooks still see it', async (t) => {
  const lines: string[] = []
  let seen: string | undefined
  const app = await build(t, (app) => {
    app.ws('/chat', {
      preValidation: async (request) => { seen = (request.query as { token: string }).token },
      keepRequest: true,
      messages: { url: { reply: Type.String(), handler: (conn) => conn.request!.url } }
    })
  }, { fastify: { logger: { level: 'info', stream: { write: (line: string) => { lines.push(line) } } } } })
  const client = await connect(t, app, '/chat?room=a&token=SECRET-123&x=1')
  t.equal(seen, 'SECRET-123')
  t.equal((await client.request('url', null)).data, '/chat?room=a&token=SECRET-123&x=1', 'the request keeps its real URL')
  const logs = lines.join('\n')
  t.notMatch(logs, /SECRET-123/)
  t.match(logs, /\/chat\?room=a&token=\[REDACTED\]&x=1/)
})
