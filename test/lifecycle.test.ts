import { test } from 'tap'
import { Type } from 'typebox'
import WebSocket from 'ws'
import { build, connect, deferred, guardProcess, wsUrl } from './helper.js'

test('frames sent while an async onOpen runs are all handled afterwards, in order', async (t) => {
  const handled: number[] = []
  const app = await build(t, (app) => {
    app.ws('/slow', {
      messages: {
        n: { data: Type.Object({ n: Type.Number() }), reply: Type.Number(), handler: (_conn, { n }) => { handled.push(n); return n } }
      },
      onOpen: async (conn) => {
        await new Promise((resolve) => setTimeout(resolve, 100))
        await conn.join('ready')
      }
    })
  })
  const client = await connect(t, app, '/slow')
  for (let n = 0; n < 50; n++) client.send({ type: 'n', data: { n }, id: n })
  for (let n = 0; n < 50; n++) t.same(await client.next(), { type: 'reply', id: n, data: n })
  t.same(handled, Array.from({ length: 50 }, (_, n) => n))
  t.equal(app.realtime.namespace('/slow').roomSize('ready'), 1, 'onOpen finished before the first message')
})

test('more frames than maxQueuedMessages during onOpen close the connection with 1008', async (t) => {
  const held = deferred()
  const app = await build(t, (app) => {
    app.ws('/held', { onOpen: () => held.promise })
  }, { realtime: { maxQueuedMessages: 10 } })
  const client = await connect(t, app, '/held')
  for (let n = 0; n < 11; n++) client.send({ type: 'ping' })
  t.same(await client.closed, { code: 1008, reason: 'too many messages before open' })
  held.resolve()
})

test('an onOpen that throws closes with 1011 and is logged', async (t) => {
  const assertClean = guardProcess(t)
  const lines: string[] = []
  const app = await build(t, (app) => {
    app.ws('/sync', { onOpen: () => { throw new Error('sync open failure') } })
    app.ws('/async', { onOpen: async () => { throw new Error('async open failure') } })
  }, { fastify: { logger: { level: 'error', stream: { write: (line: string) => { lines.push(line) } } } } })
  for (const path of ['/sync', '/async']) {
    const client = await connect(t, app, path)
    t.same(await client.closed, { code: 1011, reason: 'internal error' }, path)
  }
  t.equal(lines.filter((line) => line.includes('open failure')).length, 2)
  assertClean()
})

test('onClose runs exactly once with the code and reason, after rooms are left', async (t) => {
  const closes: Array<[number, string, number, string[]]> = []
  const done = deferred()
  const app = await build(t, (app) => {
    app.ws('/bye', {
      onOpen: (conn) => conn.join(['x', 'y']),
      onClose: (conn, code, reason) => {
        closes.push([code, reason, conn.namespace.roomSize('x'), [...conn.rooms]])
        done.resolve()
      }
    })
  })
  const client = await connect(t, app, '/bye')
  client.send({ type: 'ping' })
  await client.next()
  client.ws.close(4000, 'client leaving')
  await done.promise
  await client.closed
  t.same(closes, [[4000, 'client leaving', 0, ['x', 'y']]])
})

test('the heartbeat terminates a silent peer once, and keeps live ones', async (t) => {
  const closes: number[] = []
  const gone = deferred()
  const app = await build(t, (app) => {
    app.ws('/hb', {
      onOpen: (conn) => conn.join('room'),
      onClose: (_conn, code) => {
        closes.push(code)
        gone.resolve()
      }
    })
  }, { realtime: { heartbeat: { interval: 100, timeout: 50 } } })
  const live = await connect(t, app, '/hb')
  const silent = await connect(t, app, '/hb')
  // A paused socket reads nothing, so its pings go unanswered.
  ;(silent.ws as unknown as { _socket: { pause (): void } })._socket.pause()
  await gone.promise
  t.same(closes, [1006], 'onClose ran once for the silent peer')
  t.equal(app.realtime.namespace('/hb').roomSize('room'), 1, 'its membership is gone')
  // The live client keeps answering pings across several rounds.
  for (let round = 0; round < 3; round++) await new Promise((resolve) => live.ws.once('ping', resolve))
  t.equal(live.ws.readyState, WebSocket.OPEN)
  t.same(closes, [1006], 'no second cleanup')
})

test('a busy event loop does not cost healthy clients their connection', async (t) => {
  const closes: number[] = []
  const app = await build(t, (app) => {
    app.ws('/busy', {
      messages: {
        block: {
          data: Type.Number(),
          handler: (_conn, ms) => {
            const until = Date.now() + ms
            while (Date.now() < until) { /* a CPU-bound handler holding the loop */ }
          }
        }
      },
      onClose: (_conn, code) => { closes.push(code) }
    })
  }, { realtime: { heartbeat: { interval: 100, timeout: 50 } } })
  const client = await connect(t, app, '/busy')
  await new Promise((resolve) => client.ws.once('ping', resolve))
  // Block for 1.5 x (interval + timeout), right after a ping went out.
  t.match(await client.request('block', 225), { type: 'reply' })
  for (let round = 0; round < 3; round++) await new Promise((resolve) => client.ws.once('ping', resolve))
  t.equal(client.ws.readyState, WebSocket.OPEN)
  t.same(closes, [])
})

test('heartbeat can be turned off per route', async (t) => {
  const app = await build(t, (app) => {
    app.ws('/quiet', { heartbeat: false })
    app.ws('/loud', { heartbeat: { interval: 50, timeout: 20 } })
  }, { realtime: { heartbeat: { interval: 60_000, timeout: 1_000 } } })
  const quiet = await connect(t, app, '/quiet')
  const loud = await connect(t, app, '/loud')
  let quietPings = 0
  quiet.ws.on('ping', () => { quietPings++ })
  for (let round = 0; round < 3; round++) await new Promise((resolve) => loud.ws.once('ping', resolve))
  t.equal(quietPings, 0)
  t.equal(app.realtime.heartbeatTimers, 1, 'one timer for the route that has a heartbeat')
})

test('a frame over maxPayload closes with 1009, the handler never sees it, the server serves on', async (t) => {
  const seen: number[] = []
  const closed = deferred()
  const app = await build(t, (app) => {
    app.ws('/small', {
      messages: { big: { handler: (_conn, data) => { seen.push(String(data).length) } } },
      onClose: () => { closed.resolve() }
    })
  }, { realtime: { maxPayload: 1024 } })
  const client = await connect(t, app, '/small')
  client.ws.send(JSON.stringify({ type: 'big', data: 'x'.repeat(1024) }))
  t.equal((await client.closed).code, 1009)
  await closed.promise
  t.same(seen, [])
  t.equal(app.realtime.connectionCount, 0)
  const next = await connect(t, app, '/small')
  next.send({ type: 'ping' })
  t.same(await next.next(), { type: 'pong' })
})

test('permessage-deflate is off by default', async (t) => {
  const app = await build(t, (app) => { app.ws('/plain', {}) })
  const client = await connect(t, app, '/plain')
  t.equal(client.ws.extensions, '')
})

test('app.close() sends 1001 to every client, resolves, and leaves no timer or socket', async (t) => {
  const baseline = process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length
  const closes: number[] = []
  const app = await build(t, (app) => {
    app.ws('/a', { onClose: (_conn, code) => { closes.push(code) } })
    app.ws('/b', { onOpen: (conn) => conn.join('r'), heartbeat: { interval: 1000, timeout: 500 } })
  })
  const clients = await Promise.all([connect(t, app, '/a'), connect(t, app, '/a'), connect(t, app, '/b')])
  await app.close()
  for (const client of clients) t.same(await client.closed, { code: 1001, reason: 'server shutting down' })
  t.same(closes, [1001, 1001])
  t.equal(app.realtime.connectionCount, 0)
  t.equal(app.realtime.heartbeatTimers, 0)
  await new Promise((resolve) => setImmediate(resolve))
  const resources = process.getActiveResourcesInfo()
  t.ok(resources.filter((name) => name === 'Timeout').length <= baseline, 'no timer left')
  t.notOk(app.server.listening, 'server closed')
})

test('app.close() drops clients that never answer the close within closeTimeout', async (t) => {
  const app = await build(t, (app) => { app.ws('/stuck', {}) }, { realtime: { closeTimeout: 100 } })
  const client = await connect(t, app, '/stuck')
  ;(client.ws as unknown as { _socket: { pause (): void } })._socket.pause()
  await app.close()
  t.equal(app.realtime.connectionCount, 0)
})

test('raw routes get every frame as it came', async (t) => {
  const app = await build(t, (app) => {
    app.ws('/echo', {
      raw: true,
      onMessage (conn, data, isBinary) {
        if (isBinary) conn.send(Buffer.concat([Buffer.from([0]), data]))
        else conn.send(data.toString() === 'ping' ? 'pong' : `Server received: ${data.toString()}`)
      }
    })
    app.ws('/throws', {
      raw: true,
      onMessage (conn, data) {
        if (data.toString() === 'sync') throw new Error('raw failure')
        if (data.toString() === 'async') return Promise.reject(new Error('raw failure'))
        conn.send('still here')
      }
    })
  })
  const client = await connect(t, app, '/echo')
  client.ws.send('ping')
  t.equal(await client.nextRaw(), 'pong')
  client.ws.send('hello')
  t.equal(await client.nextRaw(), 'Server received: hello')
  client.ws.send('{"type":"ping"}')
  t.equal(await client.nextRaw(), 'Server received: {"type":"ping"}', 'no envelope handling on raw routes')
  const binary = new Promise<Buffer>((resolve) => client.ws.once('message', (data) => resolve(data as Buffer)))
  client.ws.send(Buffer.from([1, 2]), { binary: true })
  t.same([...await binary], [0, 1, 2])
  const failing = await connect(t, app, '/throws')
  failing.ws.send('sync')
  failing.ws.send('async')
  failing.ws.send('hello')
  t.equal(await failing.nextRaw(), 'still here', 'a throwing onMessage does not break the connection')
})

test('a non-upgrade GET on a WebSocket route is a 404, not a crash', async (t) => {
  const app = await build(t, (app) => { app.ws('/chat', {}) })
  const response = await fetch(wsUrl(app, '/chat').replace('ws:', 'http:'))
  t.equal(response.status, 404)
})

test('expireAt closes the connection with 4401 when the session ends, and can be moved or cleared', async (t) => {
  const app = await build(t, (app) => {
    app.ws('/session', {
      onOpen: (conn) => {
        const mode = conn.query.mode
        if (mode === 'soon') conn.expireAt(Date.now() + 300)
        if (mode === 'moved') {
          conn.expireAt(Date.now() + 100)
          conn.expireAt(new Date(Date.now() + 400))
        }
        if (mode === 'cleared') {
          conn.expireAt(Date.now() + 100)
          conn.expireAt(undefined)
        }
      }
    })
  })
  const started = Date.now()
  const soon = await connect(t, app, '/session?mode=soon')
  const moved = await connect(t, app, '/session?mode=moved')
  const cleared = await connect(t, app, '/session?mode=cleared')
  t.same(await soon.closed, { code: 4401, reason: 'session expired' })
  t.ok(Date.now() - started >= 290, 'not before the deadline')
  t.same(await moved.closed, { code: 4401, reason: 'session expired' })
  t.ok(Date.now() - started >= 390, 'the moved deadline applies')
  cleared.send({ type: 'ping' })
  t.same(await cleared.next(), { type: 'pong' }, 'a cleared deadline closes nothing')
})
