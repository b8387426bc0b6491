import { once } from 'node:events'
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import { test } from 'tap'
import { Type } from 'typebox'
import WebSocket from 'ws'
import realtime from '../lib/index.js'
import { build, connect, deferred, refusedUpgrade, TestClient, wsUrl, type TestContext } from './helper.js'

/*
 * An app with plain @fastify/websocket routes (`{ websocket: true }`) adds
 * fastify-realtime, which registers @fastify/websocket for it: every plain
 * route keeps @fastify/websocket's documented behaviour, beside the
 * plugin's routes in the same app.
 */

/** A plain route that echoes every frame. */
function echo (socket: WebSocket): void {
  socket.on('message', (data, isBinary) => { socket.send(data, { binary: isBinary }) })
}

/** Log lines of an app, parsed. */
function logCapture (): { lines: Array<Record<string, any>>, logger: { level: string, stream: { write: (line: string) => void } } } {
  const lines: Array<Record<string, any>> = []
  return { lines, logger: { level: 'debug', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } }
}

/** A raw ws client offering subprotocols; resolves once open, or with why it failed. */
async function offer (t: TestContext, url: string, protocols: string[]): Promise<{ ws?: WebSocket, status?: number, error?: string }> {
  const ws = new WebSocket(url, protocols)
  t.teardown(() => { ws.terminate() })
  return new Promise((resolve) => {
    ws.once('open', () => resolve({ ws }))
    ws.once('unexpected-response', (_req, res) => { resolve({ status: res.statusCode }); ws.terminate() })
    ws.once('error', (err) => resolve({ error: err.message }))
  })
}

test('a plain route echoes beside a plugin route', async (t) => {
  const app = await build(t, (app) => {
    app.get('/plain', { websocket: true }, echo)
    app.ws('/chat', { messages: { hi: { reply: Type.String(), handler: () => 'hello' } } })
  })
  const plain = await connect(t, app, '/plain')
  plain.ws.send('ping me')
  t.equal(await plain.nextRaw(), 'ping me')
  const ours = await connect(t, app, '/chat')
  t.match(await ours.request('hi', {}), { type: 'reply', data: 'hello' })
})

test('app.close() completes with plain and plugin clients connected: plain get the default close, ours 1001', async (t) => {
  const app = await build(t, (app) => {
    app.get('/plain', { websocket: true }, echo)
    app.ws('/chat', {})
  })
  const plain = await connect(t, app, '/plain')
  const ours = await connect(t, app, '/chat')
  await app.close()
  // @fastify/websocket's default preClose closes without a code: the client sees 1005.
  t.same((await plain.closed).code, 1005, 'plain client: closed without a code')
  t.same(await ours.closed, { code: 1001, reason: 'server shutting down' }, 'plugin client: 1001')
})

test('a throwing plain handler terminates its socket and is logged at error level; plugin routes keep 1009', async (t) => {
  const { lines, logger } = logCapture()
  const app = await build(t, (app) => {
    app.get('/sync', { websocket: true }, () => { throw new Error('sync boom') })
    app.get('/async', { websocket: true }, async () => { throw new Error('async boom') })
    app.ws('/chat', {})
  }, { fastify: { logger }, realtime: { maxPayload: 16 } })
  for (const path of ['/sync', '/async']) {
    const client = new TestClient(new WebSocket(wsUrl(app, path)))
    t.equal((await client.closed).code, 1006, `${path}: terminated (no close frame)`)
    const kind = path.slice(1)
    const line = lines.find((entry) => entry.err?.message === `${kind} boom` || entry.msg === `${kind} boom`)
    t.equal(line?.level, 50, `${path}: logged at error level`)
  }
  // ws finishes a protocol-error close itself on the plugin's routes.
  const ours = await connect(t, app, '/chat')
  ours.ws.send('x'.repeat(17))
  t.equal((await ours.closed).code, 1009, 'plugin route: 1009 reaches the client')
})

test('websocketServer.clients holds every client: the usual broadcast loop works', async (t) => {
  const app = await build(t, (app) => {
    app.get('/plain', { websocket: true }, () => {})
    app.ws('/chat', {})
  })
  const a = await connect(t, app, '/plain')
  const b = await connect(t, app, '/plain')
  await connect(t, app, '/chat')
  t.equal(app.websocketServer.clients.size, 3)
  for (const client of app.websocketServer.clients) {
    if (client.readyState === WebSocket.OPEN) client.send('to all')
  }
  t.equal(await a.nextRaw(), 'to all')
  t.equal(await b.nextRaw(), 'to all')
})

test('a custom preClose runs for plain clients, after the plugin closed its own with 1001', async (t) => {
  let oursAtPreClose: number | undefined
  const held: { ours?: TestClient } = {}
  const app = await build(t, (app) => {
    app.get('/plain', { websocket: true }, () => {})
    app.ws('/chat', {})
  }, {
    realtime: {
      websocket: {
        preClose (done) {
          oursAtPreClose = held.ours?.ws.readyState
          for (const client of app.websocketServer.clients) client.close(4000, 'custom')
          app.websocketServer.close(() => done())
        }
      }
    }
  })
  const plain = await connect(t, app, '/plain')
  const ours = held.ours = await connect(t, app, '/chat')
  await app.close()
  t.same(await plain.closed, { code: 4000, reason: 'custom' }, 'plain client: the custom close')
  t.same(await ours.closed, { code: 1001, reason: 'server shutting down' }, 'plugin client: 1001')
  t.equal(oursAtPreClose, WebSocket.CLOSED, 'the plugin client was gone before the custom preClose ran')
})

test('a custom errorHandler is called for a plain handler that throws, never for plugin routes', async (t) => {
  const seen: string[] = []
  const app = await build(t, (app) => {
    app.get('/plain', { websocket: true }, () => { throw new Error('plain boom') })
    app.ws('/chat', {})
  }, {
    realtime: {
      maxPayload: 16,
      websocket: {
        errorHandler (error, socket) {
          seen.push(error.message)
          socket.close(4500, 'handled')
        }
      }
    }
  })
  const plain = new TestClient(new WebSocket(wsUrl(app, '/plain')))
  t.same(await plain.closed, { code: 4500, reason: 'handled' })
  const ours = await connect(t, app, '/chat')
  ours.ws.send('x'.repeat(17))
  t.equal((await ours.closed).code, 1009)
  t.same(seen, ['plain boom'])
})

test('websocket.options are honoured: maxPayload, verifyClient (plain routes only), handleProtocols', async (t) => {
  const app = await build(t, (app) => {
    app.get('/plain', { websocket: true }, echo)
    app.ws('/chat', {})
  }, {
    realtime: {
      websocket: {
        options: {
          maxPayload: 32,
          verifyClient: (info: { req: { headers: Record<string, unknown> } }) => info.req.headers['x-pass'] === 'yes',
          handleProtocols: (offered: Set<string>) => offered.has('custom') ? 'custom' : false
        }
      }
    }
  })
  t.equal((await refusedUpgrade(app, '/plain')).statusCode, 401, 'verifyClient refuses a plain client')
  const plain = await connect(t, app, '/plain', { headers: { 'x-pass': 'yes' } })
  plain.ws.send('x'.repeat(33))
  t.equal((await plain.closed).code, 1009, 'options.maxPayload applies to plain routes')
  const ours = await connect(t, app, '/chat')
  t.ok(ours, 'verifyClient does not apply to plugin routes')
  const custom = await offer(t, `${wsUrl(app, '/plain')}`, ['other', 'custom'])
  t.equal(custom.status, 401, 'verifyClient still applies')
  const chosen = await offer(t, `${wsUrl(app, '/chat')}`, ['other', 'custom'])
  t.equal(chosen.ws?.protocol, 'custom', 'handleProtocols chooses on routes without protocols')
})

test('@fastify/websocket options that cannot be honoured are refused', async (t) => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['websocket.connectionOptions', { websocket: { connectionOptions: { readableObjectMode: true } } }],
    ['websocket.options.port', { websocket: { options: { port: 8080 } } }],
    ['websocket.options.noServer', { websocket: { options: { noServer: true } } }],
    ['websocket.options.path', { websocket: { options: { path: '/x' } } }],
    ['websocket.options.maxPayload', { maxPayload: 10, websocket: { options: { maxPayload: 20 } } }],
    ['websocket.options.perMessageDeflate', { perMessageDeflate: true, websocket: { options: { perMessageDeflate: false } } }],
    ['websocket.errorHandler', { websocket: { errorHandler: 'nope' } }],
    ['websocket.options.verifyClient', { websocket: { options: { verifyClient: true } } }],
    ['websocket.other', { websocket: { other: 1 } }]
  ]
  for (const [name, options] of cases) {
    const app = Fastify()
    t.teardown(() => app.close())
    await t.rejects(async () => { await app.register(realtime, options as never) }, { code: 'FST_RT_INVALID_OPTION', message: new RegExp(`'${name.replace(/\./g, '\\.')}'`) }, name)
  }
  const first = Fastify()
  t.teardown(() => first.close())
  await first.register(websocket)
  await t.rejects(async () => { await first.register(realtime, { websocket: { preClose: async () => {} } }) }, { code: 'FST_RT_INVALID_OPTION' },
    'websocket given when @fastify/websocket was registered first')
})

test('upgradeTimeout covers the plugin routes only: a plain route keeps its slow hooks', async (t) => {
  const gate = deferred()
  const plainEntered = deferred()
  const app = await build(t, (app) => {
    app.get('/plain', {
      websocket: true,
      onRequest: async () => { plainEntered.resolve(); await gate.promise }
    }, echo)
    app.ws('/chat', { onRequest: async () => { await gate.promise } })
  }, { realtime: { upgradeTimeout: 100 } })
  const plainWs = new WebSocket(wsUrl(app, '/plain'))
  t.teardown(() => { plainWs.terminate() })
  const plainClient = new TestClient(plainWs)
  await plainEntered.promise
  // Started after the plain upgrade, refused after upgradeTimeout: the plain one is past its deadline too.
  const refused = await refusedUpgrade(app, '/chat')
  t.equal(refused.statusCode, 503)
  t.match(JSON.parse(refused.body), { code: 'FST_RT_UPGRADE_TIMEOUT' })
  gate.resolve()
  await once(plainWs, 'open')
  plainWs.send('still here')
  t.equal(await plainClient.nextRaw(), 'still here')
})

test('a route with protocols chooses the first offered one it speaks; refuses a client offering none of them', async (t) => {
  const app = await build(t, (app) => {
    app.ws('/chat', { protocols: ['v2.chat', 'v1.chat'] })
  })
  const url = wsUrl(app, '/chat')
  t.equal((await offer(t, url, ['foo', 'v1.chat', 'v2.chat'])).ws?.protocol, 'v1.chat', 'the client\'s first one the route speaks')
  t.equal((await offer(t, url, ['v2.chat'])).ws?.protocol, 'v2.chat')
  t.equal((await offer(t, url, [])).ws?.protocol, '', 'a client offering none is let in without a subprotocol')
  const refusal = await refusedUpgrade(app, '/chat', { headers: { 'sec-websocket-protocol': 'foo, bar' } })
  t.equal(refusal.statusCode, 400)
  t.match(JSON.parse(refusal.body), { code: 'FST_RT_UNSUPPORTED_PROTOCOL' })
  t.equal(refusal.upgraded, false)
})

test('routes without protocols, plain or not, never echo a protocol the client offered', async (t) => {
  const app = await build(t, (app) => {
    app.get('/plain', { websocket: true }, echo)
    app.ws('/chat', {})
  })
  for (const path of ['/plain', '/chat']) {
    const result = await offer(t, wsUrl(app, path), ['foo', 'bar'])
    // The server answers without a subprotocol; a client that asked for one fails the connection (browsers too).
    t.equal(result.error, 'Server sent no subprotocol', path)
  }
})

test('protocols on a route are refused when @fastify/websocket was registered first', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  await app.register(realtime)
  t.throws(() => app.ws('/chat', { protocols: ['v1'] }), { code: 'FST_RT_INVALID_OPTION' })
  t.doesNotThrow(() => app.ws('/plain-ws', {}), 'a route without protocols registers')
})

test('a route\'s protocols are checked at app.ws()', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime)
  for (const protocols of [[], ['a b'], ['v1', 'v1'], 'v1', [1]]) {
    t.throws(() => app.ws(`/p${Math.random()}`.replace('.', ''), { protocols: protocols as never }), { code: 'FST_RT_INVALID_OPTION' }, JSON.stringify(protocols))
  }
})
