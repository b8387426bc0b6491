import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { request as httpsRequest } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import { chromium } from 'playwright-core'
import { test } from 'tap'
import { Type } from 'typebox'
import WebSocket from 'ws'
import realtime, { defineRoute } from '../../lib/index.js'
import { connect as connectClient, type WebSocketConstructor } from '../../lib/client/index.js'
import { opened, refusedStatus, type TestClient, type TestContext } from '../helper.js'
import { startExample } from '../support/example-server.js'
import { selfSignedCertificate, type TestCertificate } from '../support/tls.js'

/*
 * wss:// end to end: Fastify's own `https` server with a certificate made
 * for the test, spoken to by `ws`, the typed client and headless Chromium;
 * then the built example with TLS_CERT and TLS_KEY.
 */

const secure = defineRoute({
  path: '/secure',
  preValidation: async (request, reply) => {
    const token = (request.query as { token?: string }).token ?? ''
    if (!/^ok-[a-z]+$/.test(token)) {
      await reply.code(401).send({ statusCode: 401, error: 'Unauthorized', message: 'token ok-<name> required' })
      return
    }
    // What Fastify saw of the upgrade request: https, since the TLS is its own.
    (request as { user?: unknown }).user = { id: token.slice(3), tls: request.protocol === 'https' }
  },
  messages: {
    echo: {
      data: Type.Object({ text: Type.String() }),
      reply: Type.Object({ text: Type.String(), tls: Type.Boolean() }),
      handler: (conn, { text }) => ({ text, tls: (conn.user as unknown as { tls: boolean }).tls })
    }
  },
  events: { notice: Type.Object({ text: Type.String() }) },
  onOpen: (conn) => conn.join(`user:${conn.userId ?? ''}`)
})

const PAGE = '<!doctype html><title>tls</title>'

async function tlsApp (t: TestContext, certificate: TestCertificate): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, https: { cert: certificate.cert, key: certificate.key } }) as unknown as FastifyInstance
  t.teardown(() => app.close())
  // A short heartbeat: a peer that stops answering pings is gone within interval + timeout.
  await app.register(realtime, { heartbeat: { interval: 200, timeout: 150 } })
  app.ws(secure)
  app.get('/', async (_request, reply) => reply.type('text/html').send(PAGE))
  app.post('/push/:user', async (request, reply) => {
    const { user } = request.params as { user: string }
    await app.realtime.namespace(secure).to(`user:${user}`).emit('notice', request.body as { text: string })
    return reply.code(202).send()
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return app
}

function portOf (app: FastifyInstance): number {
  return (app.server.address() as AddressInfo).port
}

/** An HTTPS request trusting `ca`; resolves with the status and body. */
async function https (port: number, method: string, path: string, ca: string, body?: unknown): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, method, path, ca, headers: body === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { text += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
    })
    req.on('error', reject)
    req.end(body === undefined ? undefined : JSON.stringify(body))
  })
}

/** A `ws` client over wss:// trusting `ca`; rejects with the status of a refused upgrade. */
async function wssClient (t: TestContext, url: string, ca: string, options: WebSocket.ClientOptions = {}): Promise<TestClient> {
  return opened(t, new WebSocket(url, { ca, ...options }))
}

/** The HTTP status of a refused wss:// upgrade; rejects if the server switched protocols. */
async function refusedWss (url: string, ca: string): Promise<number> {
  return refusedStatus(new WebSocket(url, { ca }))
}

/** `ws`'s WebSocket trusting `ca`, shaped as the typed client's `WebSocket` option (url, protocols). */
function trustingWebSocket (ca: string): WebSocketConstructor {
  return class extends WebSocket {
    constructor (url: string | URL, protocols?: string | string[]) {
      super(url, protocols, { ca })
    }
  }
}

test('wss:// with a ws client, the typed client and a REST push over https', async (t) => {
  const certificate = await selfSignedCertificate(t)
  const app = await tlsApp(t, certificate)
  const base = `wss://127.0.0.1:${portOf(app)}/secure`

  t.test('auth on upgrade: 401 for a bad token, never a 101', async (t) => {
    t.equal(await refusedWss(`${base}`, certificate.cert), 401)
    t.equal(await refusedWss(`${base}?token=nope`, certificate.cert), 401)
  })

  t.test('a client that does not trust the certificate cannot connect', async (t) => {
    const ws = new WebSocket(`${base}?token=ok-alice`)
    const [err] = await new Promise<[Error]>((resolve) => ws.once('error', (e) => resolve([e])))
    t.match((err as { code?: string }).code, /SELF_SIGNED|UNABLE_TO_VERIFY|CERT/)
  })

  t.test('ws: request/reply, and a POST over https reaches the client', async (t) => {
    const alice = await wssClient(t, `${base}?token=ok-alice`, certificate.cert)
    t.same(await alice.request('echo', { text: 'over tls' }, 'e1'), { type: 'reply', id: 'e1', data: { text: 'over tls', tls: true } })
    const push = await https(portOf(app), 'POST', '/push/alice', certificate.cert, { text: 'pushed' })
    t.equal(push.status, 202)
    t.same(await alice.next(), { type: 'notice', data: { text: 'pushed' } })
  })

  t.test('the typed client (ws WebSocket with the CA): request/reply and a push', async (t) => {
    const client = connectClient<typeof secure>(base, { WebSocket: trustingWebSocket(certificate.cert), token: 'ok-bob' })
    t.teardown(() => client.close())
    const notices: string[] = []
    const noticed = new Promise<void>((resolve) => client.on('notice', ({ text }) => { notices.push(text); resolve() }))
    t.same(await client.request('echo', { text: 'typed' }), { text: 'typed', tls: true })
    t.equal((await https(portOf(app), 'POST', '/push/bob', certificate.cert, { text: 'for bob' })).status, 202)
    await noticed
    t.same(notices, ['for bob'])
  })

  t.test('heartbeat over tls: a dead peer is terminated, a live one stays', async (t) => {
    // autoPong off: the client's TCP and TLS are fine, but it never answers a ping.
    const dead = await wssClient(t, `${base}?token=ok-dead`, certificate.cert, { autoPong: false })
    const live = await wssClient(t, `${base}?token=ok-live`, certificate.cert)
    const closed = await dead.closed
    t.equal(closed.code, 1006, 'terminated, no close frame')
    // This part is about elapsed time: the live one outlasts several heartbeat periods.
    await new Promise((resolve) => setTimeout(resolve, 1000))
    t.equal(live.ws.readyState, WebSocket.OPEN)
    t.match(await live.request('echo', { text: 'still here' }), { type: 'reply', data: { text: 'still here' } })
  })
})

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
// CI installs Chromium (.ci/run) and never skips; elsewhere, without it, the test says why it is skipped.
const skipBrowser = !existsSync(CHROMIUM) && process.env.CI === undefined
  ? `no Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)`
  : false

test('headless Chromium over https and wss (certificate errors ignored)', { skip: skipBrowser }, async (t) => {
  const certificate = await selfSignedCertificate(t)
  const app = await tlsApp(t, certificate)
  const origin = `https://127.0.0.1:${portOf(app)}`
  const profile = await mkdtemp(join(tmpdir(), 'realtime-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--ignore-certificate-errors']
  })
  t.teardown(async () => {
    await context.close()
    await rm(profile, { recursive: true, force: true })
  })
  const page = await context.newPage()
  await page.goto(`${origin}/`)

  // A bad token: the browser sees no status, only a connection that never opens.
  const refused = await page.evaluate(async (url) => new Promise<{ opened: boolean, code: number }>((resolve) => {
    const ws = new WebSocket(url)
    let opened = false
    ws.onopen = () => { opened = true }
    ws.onclose = (event) => resolve({ opened, code: event.code })
  }), `wss://127.0.0.1:${portOf(app)}/secure?token=bad`)
  t.same(refused, { opened: false, code: 1006 })

  // The page's Origin is the server's own host: the same-host default lets it in.
  await page.evaluate(async (url) => new Promise<void>((resolve, reject) => {
    const ws = new WebSocket(url)
    const w = globalThis as unknown as { received: unknown[], socket: WebSocket }
    w.received = []
    w.socket = ws
    ws.onmessage = (event) => { w.received.push(JSON.parse(String(event.data))) }
    ws.onopen = () => resolve()
    ws.onerror = () => reject(new Error('wss failed in the page'))
  }), `wss://127.0.0.1:${portOf(app)}/secure?token=ok-carol`)
  await page.evaluate(() => {
    (globalThis as unknown as { socket: WebSocket }).socket.send(JSON.stringify({ type: 'echo', data: { text: 'from chromium' }, id: 'b1' }))
  })
  await page.waitForFunction(() => (globalThis as unknown as { received: unknown[] }).received.length === 1)
  t.equal((await https(portOf(app), 'POST', '/push/carol', certificate.cert, { text: 'to the browser' })).status, 202)
  await page.waitForFunction(() => (globalThis as unknown as { received: unknown[] }).received.length === 2)
  t.same(await page.evaluate(() => (globalThis as unknown as { received: unknown[] }).received), [
    { type: 'reply', id: 'b1', data: { text: 'from chromium', tls: true } },
    { type: 'notice', data: { text: 'to the browser' } }
  ])
})

test('the built example serves https and wss with TLS_CERT and TLS_KEY', async (t) => {
  const certificate = await selfSignedCertificate(t)
  const server = await startExample({ TLS_CERT: certificate.certPath, TLS_KEY: certificate.keyPath })
  t.teardown(() => server.stop())

  const health = await https(server.port, 'GET', '/health', certificate.cert)
  t.same([health.status, JSON.parse(health.body)], [200, { ok: true }])
  // Plain HTTP on the TLS port gets no HTTP answer.
  await t.rejects(fetch(`http://127.0.0.1:${server.port}/health`))

  t.equal(await refusedWss(`wss://127.0.0.1:${server.port}/chat?token=nope`, certificate.cert), 401)
  const alice = await wssClient(t, `wss://127.0.0.1:${server.port}/chat?token=demo-alice`, certificate.cert)
  const bob = await wssClient(t, `wss://127.0.0.1:${server.port}/chat?token=demo-bob`, certificate.cert)
  await alice.request('join', { room: 'lobby' })
  await bob.request('join', { room: 'lobby' })
  t.match(await alice.request('say', { room: 'lobby', text: 'hello over wss' }), { type: 'reply', data: { at: Number } })
  t.same(await bob.next(), { type: 'said', data: { room: 'lobby', text: 'hello over wss', from: 'alice' } })
  t.equal((await https(server.port, 'POST', '/notify/alice', certificate.cert, { text: 'hi' })).status, 202)
  t.same(await alice.next(), { type: 'notification', data: { text: 'hi' } })

  // Without the variables it is plain HTTP again.
  const plain = await startExample()
  t.teardown(() => plain.stop())
  t.equal((await fetch(`http://127.0.0.1:${plain.port}/health`)).status, 200)
})
