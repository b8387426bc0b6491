import { test } from 'tap'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { build, connect, refusedUpgrade } from './helper.js'

/*
 * Cross-site WebSocket hijacking: without `allowedOrigins`, a browser
 * upgrade (one with an Origin header) is accepted only from a page of the
 * server's own host; clients without Origin are not concerned.
 */

function ownOrigin (app: FastifyInstance): string {
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

test('by default only pages of the same host may open a WebSocket', async (t) => {
  let opened = 0
  const app = await build(t, (app) => { app.ws('/chat', { onOpen: () => { opened++ } }) })
  const own = await connect(t, app, '/chat', { origin: ownOrigin(app) })
  own.send({ type: 'ping' })
  t.same(await own.next(), { type: 'pong' }, 'same origin accepted')
  await connect(t, app, '/chat')
  t.pass('no Origin (a non-browser client) accepted')

  const evil = await refusedUpgrade(app, '/chat', { origin: 'https://evil.example' })
  t.same([evil.statusCode, evil.upgraded], [403, false], 'another origin: 403, no 101')
  t.match(JSON.parse(evil.body), { code: 'FST_RT_ORIGIN_FORBIDDEN' })
  const port = (app.server.address() as AddressInfo).port
  t.equal((await refusedUpgrade(app, '/chat', { origin: `http://127.0.0.1:${port + 1}` })).statusCode, 403, 'another port')
  t.equal((await refusedUpgrade(app, '/chat', { origin: `http://127.0.0.1.evil.example:${port}` })).statusCode, 403, 'a suffix')
  t.equal((await refusedUpgrade(app, '/chat', { origin: 'null' })).statusCode, 403, 'an opaque origin')
  t.equal((await refusedUpgrade(app, '/chat', { origin: 'https://evil.example', headers: { 'x-forwarded-host': 'evil.example' } })).statusCode,
    403, 'X-Forwarded-Host is ignored without trustProxy')
  t.equal(opened, 2, 'only the two accepted clients opened')
})

test("allowedOrigins: '*' accepts every origin, on the plugin or a route", async (t) => {
  const app = await build(t, (app) => {
    app.ws('/any', {})
    app.ws('/own', { allowedOrigins: ['https://partner.example'] })
  }, { realtime: { allowedOrigins: '*' } })
  await connect(t, app, '/any', { origin: 'https://evil.example' })
  await connect(t, app, '/any', { origin: 'null' })
  t.pass('any origin accepted')
  t.equal((await refusedUpgrade(app, '/own', { origin: 'https://evil.example' })).statusCode, 403, 'a route list still applies')

  const perRoute = await build(t, (app) => {
    app.ws('/default', {})
    app.ws('/public', { allowedOrigins: '*' })
  })
  await connect(t, perRoute, '/public', { origin: 'https://evil.example' })
  t.equal((await refusedUpgrade(perRoute, '/default', { origin: 'https://evil.example' })).statusCode, 403)
})

test('behind a proxy (trustProxy), the forwarded host is the own host', async (t) => {
  const app = await build(t, (app) => { app.ws('/chat', {}) }, { fastify: { trustProxy: true } })
  const client = await connect(t, app, '/chat', {
    origin: 'https://chat.example.com',
    headers: { 'x-forwarded-host': 'chat.example.com', 'x-forwarded-proto': 'https' }
  })
  client.send({ type: 'ping' })
  t.same(await client.next(), { type: 'pong' }, 'the public origin accepted')
  await connect(t, app, '/chat', {
    origin: 'https://chat.example.com:8443',
    headers: { 'x-forwarded-host': 'chat.example.com:8443', 'x-forwarded-proto': 'https' }
  })
  t.pass('with a port')
  t.equal((await refusedUpgrade(app, '/chat', {
    origin: 'https://evil.example',
    headers: { 'x-forwarded-host': 'chat.example.com', 'x-forwarded-proto': 'https' }
  })).statusCode, 403, 'another origin still refused')
})

test('allowedOrigins is validated', async (t) => {
  const { default: Fastify } = await import('fastify')
  const { default: realtime } = await import('../lib/index.js')
  for (const value of ['all', 'https://a.example', true, ['*']]) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(realtime, { allowedOrigins: value as never }).ready() },
      { code: 'FST_RT_INVALID_OPTION', message: /'allowedOrigins'/ }, String(value))
    await app.close()
  }
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime, {})
  t.throws(() => app.ws('/x', { allowedOrigins: 'any' as never }), { code: 'FST_RT_INVALID_OPTION' })
})
