import { existsSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { test } from 'tap'
import { Type } from 'typebox'
import WebSocket from 'ws'
import realtime, { defineRoute, type RealtimeOptions } from '../../lib/index.js'
import { opened, refusedStatus, type TestClient, type TestContext } from '../helper.js'
import { NGINX, startNginx, type Nginx } from '../support/nginx.js'

/*
 * Behind nginx, configured with the snippet of docs/deployment.md: the
 * upgrade goes through, Fastify's trustProxy gives conn.ip and the Origin
 * check the client's side of the proxy, and the heartbeat keeps an idle
 * connection open past proxy_read_timeout.
 *
 * The test's clients bind 127.0.0.2 (all of 127/8 is loopback on Linux):
 * nginx itself talks to the app from 127.0.0.1, so the two are told apart
 * as a real client and its proxy would be.
 */

const where = defineRoute({
  path: '/where',
  messages: {
    whoami: {
      reply: Type.Object({ ip: Type.String(), host: Type.String(), protocol: Type.String() }),
      handler: (conn) => {
        const request = (conn.user as unknown as { seen: { host: string, protocol: string } }).seen
        return { ip: conn.ip, ...request }
      }
    }
  },
  preValidation: async (request) => {
    (request as { user?: unknown }).user = { seen: { host: request.host, protocol: request.protocol } }
  }
})

interface Proxied { app: FastifyInstance, nginx: Nginx }

async function proxied (t: TestContext, fastify: FastifyServerOptions, options: RealtimeOptions, readTimeout?: string): Promise<Proxied> {
  const app = Fastify({ logger: false, ...fastify })
  t.teardown(() => app.close())
  await app.register(realtime, options)
  app.get('/health', async () => ({ ok: true }))
  app.get('/ip', async (request) => ({ ip: request.ip, protocol: request.protocol }))
  app.ws(where)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const nginx = await startNginx(t, { upstreams: [(app.server.address() as AddressInfo).port], ...(readTimeout === undefined ? {} : { readTimeout }) })
  return { app, nginx }
}

interface Dial { from?: string, headers?: Record<string, string>, origin?: string }

function dial (nginx: Nginx, path: string, { from = '127.0.0.2', headers, origin }: Dial = {}): WebSocket {
  return new WebSocket(`ws://127.0.0.1:${nginx.port}${path}`, { localAddress: from, headers, ...(origin === undefined ? {} : { origin }) })
}

async function open (t: TestContext, nginx: Nginx, path: string, options: Dial = {}): Promise<TestClient> {
  return opened(t, dial(nginx, path, options))
}

async function refusal (nginx: Nginx, path: string, options: Dial = {}): Promise<number> {
  return refusedStatus(dial(nginx, path, options))
}

// CI installs nginx (.ci/run); elsewhere, without it, this file says so and skips rather than failing.
const skip = process.env.CI === undefined && !existsSync(NGINX)
  ? `no nginx at ${NGINX}: apt-get install nginx (or set NGINX_PATH)`
  : false

test('behind nginx with trustProxy set to the proxy\'s address', { skip }, async (t) => {
  const { nginx } = await proxied(t, { trustProxy: '127.0.0.1' }, { maxConnectionsPerIp: 2 })

  t.test('request/reply through the proxy; conn.ip is the client, a forged X-Forwarded-For is not believed', async (t) => {
    const client = await open(t, nginx, '/where', { from: '127.0.0.5', headers: { 'x-forwarded-for': '203.0.113.7' } })
    // nginx appends the address it saw: "203.0.113.7, 127.0.0.5". Only 127.0.0.1 is trusted, so the
    // right-most untrusted entry is the client's own, and the entry the client wrote is ignored.
    t.match(await client.request('whoami', undefined), {
      type: 'reply', data: { ip: '127.0.0.5', host: `127.0.0.1:${nginx.port}`, protocol: 'http' }
    })
  })

  t.test('maxConnectionsPerIp counts the client\'s address, not the proxy\'s', async (t) => {
    await open(t, nginx, '/where')
    await open(t, nginx, '/where', { headers: { 'x-forwarded-for': '198.51.100.1' } })
    t.equal(await refusal(nginx, '/where'), 429, 'a third from 127.0.0.2')
    t.equal(await refusal(nginx, '/where', { headers: { 'x-forwarded-for': '198.51.100.2' } }), 429, 'a forged header does not get around it')
    const other = await open(t, nginx, '/where', { from: '127.0.0.3' })
    t.match(await other.request('whoami', undefined), { data: { ip: '127.0.0.3' } })
  })

  t.test('same-host Origin: the proxy\'s host is accepted, another origin gets 403', async (t) => {
    const page = await open(t, nginx, '/where', { from: '127.0.0.4', origin: `http://127.0.0.1:${nginx.port}` })
    t.match(await page.request('whoami', undefined), { type: 'reply' })
    t.equal(await refusal(nginx, '/where', { from: '127.0.0.4', origin: 'https://evil.example' }), 403)
    t.equal(await refusal(nginx, '/where', { from: '127.0.0.4', origin: `http://127.0.0.1:${nginx.port}.evil.example` }), 403)
  })

  t.test('REST through the same proxy: X-Forwarded-Proto and the client address', async (t) => {
    const res = await fetch(`${nginx.url}/ip`)
    // fetch binds no local address: this request comes from 127.0.0.1, which is trusted, so the
    // address seen is the last one nginx appended and nothing more to the left: 127.0.0.1 itself.
    t.same(await res.json(), { ip: '127.0.0.1', protocol: 'http' })
  })
})

test('behind nginx with trustProxy: true, a client can choose its conn.ip', { skip }, async (t) => {
  const { nginx } = await proxied(t, { trustProxy: true }, {})
  const client = await open(t, nginx, '/where', { headers: { 'x-forwarded-for': '203.0.113.7' } })
  // Every hop is trusted, so the left-most entry wins, and the client wrote it.
  t.match(await client.request('whoami', undefined), { data: { ip: '203.0.113.7' } })
  const honest = await open(t, nginx, '/where')
  t.match(await honest.request('whoami', undefined), { data: { ip: '127.0.0.2' } })
})

test('proxy_read_timeout 1s: a 300 ms heartbeat keeps an idle connection open, none lets nginx close it', { skip }, async (t) => {
  const withHeartbeat = await proxied(t, { trustProxy: '127.0.0.1' }, { heartbeat: { interval: 300, timeout: 200 } }, '1s')
  const without = await proxied(t, { trustProxy: '127.0.0.1' }, { heartbeat: false }, '1s')
  const kept = await open(t, withHeartbeat.nginx, '/where')
  const dropped = await open(t, without.nginx, '/where')
  const started = Date.now()

  const closed = await dropped.closed
  const after = Date.now() - started
  t.equal(closed.code, 1006, 'nginx drops the TCP connection: no close frame')
  t.ok(after >= 900 && after < 2900, `closed by nginx after ~1 s idle (${after} ms)`)
  t.match(await without.nginx.errorLog(), /upstream timed out/)

  // This test is about elapsed time: wait it out with a timer.
  await new Promise((resolve) => setTimeout(resolve, 3000 - (Date.now() - started)))
  t.equal(kept.ws.readyState, WebSocket.OPEN, 'open after 3 s idle')
  t.match(await kept.request('whoami', undefined), { type: 'reply', data: { ip: '127.0.0.2' } })
})
