import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import WebSocket, { WebSocketServer } from 'ws'
import realtime, { defineRoute, type Connection, type RealtimeOptions, type RecoveryOptions } from '../lib/index.js'
import { connect, type RealtimeClient, type SessionInfo, type StateInfo } from '../lib/client/index.js'
import { deferred, pollUntil, type TestContext } from './helper.js'
import { liveEvents } from './fixtures/live-route.js'
import { userFromQuery } from './fixtures/user-hook.js'
import { redisFor } from './support/redis.js'

/*
 * The typed client on a route with session recovery: after a lost
 * connection it resumes by itself, the app sees every event once and in
 * order, and the joins are replayed only when the session did not come back.
 */

/** What the servers of one test saw: every join (by room), every upgrade URL, the open connections. */
interface Seen {
  joins: string[]
  urls: string[]
  conns: Array<Connection<any, any>>
}

function liveRoute (seen: Seen, recovery: RecoveryOptions | false) {
  return defineRoute({
    path: '/live',
    preValidation: userFromQuery,
    recovery,
    onOpen: (conn, request) => {
      seen.urls.push(request.url)
      seen.conns.push(conn)
    },
    messages: {
      join: {
        data: Type.Object({ room: Type.String() }),
        reply: Type.Null(),
        handler: async (conn, { room }) => {
          seen.joins.push(room)
          await conn.join(room)
          return null
        }
      },
      say: {
        data: Type.Object({ room: Type.String(), text: Type.String() }),
        handler: (conn, { room, text }) => conn.namespace.to(room).emit('update', { room, seq: 0, text })
      }
    },
    events: liveEvents
  })
}

type Live = ReturnType<typeof liveRoute>

/** A server with the /live route on `port` (0: any free one); closed at teardown (closing twice is harmless). */
async function liveServer (t: TestContext, seen: Seen, port = 0, recovery: RecoveryOptions | false = { window: 5000 },
  options: RealtimeOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(realtime, { closeTimeout: 500, ...options })
  app.ws(liveRoute(seen, recovery))
  await app.listen({ port, host: '127.0.0.1' })
  return app
}

function portOf (app: FastifyInstance): number {
  return (app.server.address() as AddressInfo).port
}

function newSeen (): Seen {
  return { joins: [], urls: [], conns: [] }
}

interface Watched {
  client: RealtimeClient<Live>
  /** The seq of every `update` in r1, in the order the app's handler saw them. */
  seqs: number[]
  /** Every update, whatever its room. */
  updates: Array<{ room: string, seq: number, text: string }>
  opens: StateInfo[]
}

/** A typed client of /live as `ann`, with fast retries; closed at teardown. */
function liveClient (t: TestContext, port: number, token?: () => Promise<string>): Watched {
  const client = connect<Live>(`ws://127.0.0.1:${port}/live?user=ann&tag=x%20y`, {
    WebSocket,
    reconnect: { initialDelay: 20, maxDelay: 100 },
    ...(token === undefined ? {} : { token })
  })
  t.teardown(() => client.close())
  const watched: Watched = { client, seqs: [], updates: [], opens: [] }
  client.on('update', (data) => {
    watched.updates.push(data)
    if (data.room === 'r1') watched.seqs.push(data.seq)
  })
  client.on('state', (state, info) => { if (state === 'open') watched.opens.push(info) })
  return watched
}

/** Connected, in r1, with the session frame read. */
async function joined (watched: Watched, rooms = ['r1']): Promise<void> {
  for (const room of rooms) await watched.client.request('join', { room })
  await pollUntil(() => watched.client.session !== undefined)
}

/** Resolves at the client's next change to `state`. */
async function reaches (client: RealtimeClient<Live>, state: string): Promise<void> {
  return new Promise((resolve) => {
    const off = client.on('state', (current) => {
      if (current !== state) return
      off()
      resolve()
    })
  })
}

function upTo (n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1)
}

/**
 * Emits `update` to r1 with seq 1..total, one at a time; `at(seq)` runs
 * before each (to drop a connection mid-stream). Yields to I/O between
 * events so the client reads them as they come.
 */
async function push (emit: (seq: number) => Promise<void>, total: number, at: (seq: number) => Promise<void> | void = () => {}): Promise<void> {
  for (let seq = 1; seq <= total; seq++) {
    await at(seq)
    await emit(seq)
    if (seq % 5 === 0) await new Promise((resolve) => setImmediate(resolve))
  }
}

test('a connection dropped by the server mid-stream resumes: every event once, in order, rooms back without a join', async (t) => {
  const seen = newSeen()
  const app = await liveServer(t, seen)
  const ns = app.realtime.namespace('/live')
  const live = liveClient(t, portOf(app))
  await joined(live)
  t.same(live.opens, [{ attempt: 0 }], 'the first open says nothing about recovery')
  const firstSession = live.client.session!.id
  t.match(firstSession, /^[A-Za-z0-9_-]{22}$/)
  t.equal(live.client.session!.pos, undefined, 'no event yet')

  let queued: Promise<unknown> | undefined
  const emit = (seq: number): Promise<void> => ns.to('r1').emit('update', { room: 'r1', seq, text: 'live' })
  await push(emit, 300, async (seq) => {
    if (seq !== 100 && seq !== 200) return
    // Read up to here, so that the drop falls mid-stream with events still to come.
    await pollUntil(() => live.seqs.length >= seq - 10)
    const lost = reaches(live.client, 'reconnecting')
    seen.conns.at(-1)!.terminate()
    if (seq === 100) {
      await lost
      // Made while reconnecting (the retry waits for a timer): queued, and sent once the session is back.
      queued = live.client.request('join', { room: 'r2' })
    }
  })
  await pollUntil(() => live.seqs.length >= 300)
  t.same(live.seqs, upTo(300), 'every seq exactly once, in order')
  t.same(await queued, null, 'the request queued while reconnecting was answered')
  t.same(seen.joins, ['r1', 'r2'], 'r1 was never joined again')
  t.same(live.opens.map((info) => info.recovered), [undefined, true, true])
  t.match(live.client.session!.pos, /^[0-9a-f]{16}-300$/, 'the position of the last event seen')

  t.equal(seen.urls.length, 3)
  const second = new URL(seen.urls[1]!, 'ws://x').searchParams
  t.equal(second.get('resume'), firstSession, 'the first reconnect claims the first session')
  t.match(second.get('pos'), /^[0-9a-f]{16}-\d+$/)
  const third = new URL(seen.urls[2]!, 'ws://x').searchParams
  t.same(third.getAll('resume'), [seen.conns[1]!.sessionId], 'the second claims the session the resume handed out, once')
  t.equal(third.getAll('pos').length, 1)
  t.ok(seen.urls.every((url) => url.startsWith('/live?user=ann&tag=x%20y')), 'the URL\'s own query is kept as written')

  // r2 came back too, with the second resume.
  await ns.to('r2').emit('update', { room: 'r2', seq: 1, text: 'r2' })
  await pollUntil(() => live.updates.some((update) => update.room === 'r2'))
})

test('redis: the typed client survives a server restart mid-stream with no gap and no duplicate', async (t) => {
  const redis = await redisFor(t)
  const options: RealtimeOptions = { redis: redis.url, publishTimeout: 1000, redisReadyTimeout: 2000 }
  const seen = newSeen()
  let a = await liveServer(t, seen, 0, { window: 10_000, maxEvents: 5000 }, options)
  const b = await liveServer(t, seen, 0, { window: 10_000, maxEvents: 5000 }, options)
  const port = portOf(a)
  const live = liveClient(t, port)
  await joined(live)
  const emit = (seq: number): Promise<void> => b.realtime.namespace('/live').to('r1').emit('update', { room: 'r1', seq, text: 'via b' })
  const total = 400
  let restarted: Promise<void> | undefined
  await push(emit, total, async (seq) => {
    if (seq !== 100) return
    await pollUntil(() => live.seqs.length >= 90)
    // B goes on publishing while A is down and comes back on the same port.
    restarted = (async () => {
      await a.close()
      a = await liveServer(t, seen, port, { window: 10_000, maxEvents: 5000 }, options)
    })()
  })
  await restarted
  await pollUntil(() => live.seqs.length >= total, { timeout: 15_000 })
  t.same(live.seqs, upTo(total), 'every seq exactly once, in order')
  t.same(live.opens.map((info) => info.recovered), [undefined, true], 'the restart was survived by a resume')
  t.same(seen.joins, ['r1'], 'no join was sent again')
  t.equal(seen.urls.length, 2)
})

/** Drops the client's connection and brings a new server up on the same port before it may come back. */
async function lostSession (t: TestContext, how: 'window' | 'forgotten' | 'no recovery'): Promise<void> {
  const seen = newSeen()
  const window = 150
  let app = await liveServer(t, seen, 0, { window })
  const port = portOf(app)
  const gate = deferred()
  let attempts = 0
  // Holds every reconnect until the test lets it go.
  const live = liveClient(t, port, async () => {
    if (attempts++ > 0) await gate.promise
    return 'x'
  })
  await joined(live, ['r1', 'r2'])
  await app.realtime.namespace('/live').to('r1').emit('update', { room: 'r1', seq: 1, text: 'seen' })
  await pollUntil(() => live.seqs.length === 1)
  const before = live.client.session!
  t.type(before.pos, 'string')

  if (how === 'window') {
    const lost = reaches(live.client, 'reconnecting')
    seen.conns.at(-1)!.terminate()
    await lost
    // Nothing announces a window's end: wait it out, with room to spare.
    await sleep(window * 4)
  } else {
    const lost = reaches(live.client, 'reconnecting')
    await app.close()
    await lost
    app = await liveServer(t, seen, port, how === 'no recovery' ? false : { window })
  }
  // Sent while reconnecting: it goes after the replayed joins, so the client hears its own event in r1.
  live.client.send('say', { room: 'r1', text: 'queued' })
  let after: SessionInfo | undefined
  live.client.on('state', (state) => { if (state === 'open') after = live.client.session })
  gate.resolve()
  await pollUntil(() => live.opens.length === 2)
  t.same(live.opens[1], { attempt: 0, recovered: false }, 'state says the session did not come back')
  t.same(seen.joins, ['r1', 'r2', 'r1', 'r2'], 'the joins were replayed, in order')
  await pollUntil(() => live.updates.some((update) => update.text === 'queued'))
  if (how === 'no recovery') {
    t.equal(after, undefined, 'a route that stopped speaking sessions is treated as having none')
  } else {
    t.not(after!.id, before.id, 'a new session')
    t.equal(after!.pos, undefined, 'its position starts over')
  }
  await app.realtime.namespace('/live').to('r2').emit('update', { room: 'r2', seq: 2, text: 'r2 again' })
  await pollUntil(() => live.updates.some((update) => update.text === 'r2 again'))
  t.same(live.seqs, [1, 0], 'nothing replayed from the lost session')
}

test('not recovered: the window passed; state says so and the joins are replayed before the queue', async (t) => {
  await lostSession(t, 'window')
})

test('not recovered: the server forgot the session (a restart without a shared history)', async (t) => {
  await lostSession(t, 'forgotten')
})

test('not recovered: the route no longer has session recovery; the client stops claiming one', async (t) => {
  await lostSession(t, 'no recovery')
})

/** A bare `ws` server that plays a recovery-enabled route's frames; `play` runs for each connection with its URL. */
async function scripted (t: TestContext, play: (socket: WebSocket, url: string, index: number) => void): Promise<number> {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  await once(server, 'listening')
  let index = 0
  server.on('connection', (socket, request) => play(socket, request.url!, index++))
  return (server.address() as AddressInfo).port
}

test('the client never surfaces the session frame, drops a position it has seen, and replaces a stale resume in the URL', async (t) => {
  const urls: string[] = []
  const id = (n: number): string => String(n).repeat(22)
  const port = await scripted(t, (socket, url, index) => {
    urls.push(url)
    const frames = [{ type: 'session', data: { id: id(index + 1), recovered: index > 0 } }]
    if (index === 0) {
      for (const [pos, seq] of [['00000000000000aa-1', 1], ['00000000000000aa-2', 2], ['00000000000000aa-2', 2],
        ['00000000000000aa-3', 3], ['00000000000000aa-1', 1], ['00000000000000bb-1', 4]] as const) {
        frames.push({ pos, type: 'update', data: { room: 'r1', seq, text: '' } } as any)
      }
    }
    for (const frame of frames) socket.send(JSON.stringify(frame))
    if (index === 0) socket.close(1012, 'restart')
  })
  const client = connect(`ws://127.0.0.1:${port}/x?resume=stale&a=1&pos=old`, { WebSocket, reconnect: { initialDelay: 1, maxDelay: 1 } })
  t.teardown(() => client.close())
  const seqs: number[] = []
  client.on('update', (data) => seqs.push((data as { seq: number }).seq))
  client.on('session', () => t.fail('the session frame is the client\'s own'))
  const opens: StateInfo[] = []
  client.on('state', (state, info) => { if (state === 'open') opens.push(info) })
  await pollUntil(() => opens.length === 2)
  t.same(seqs, [1, 2, 3, 4], 'a position seen once is dropped; another epoch is new')
  t.same(urls, ['/x?resume=stale&a=1&pos=old', `/x?a=1&resume=${id(1)}&pos=00000000000000bb-1`])
  t.same(opens, [{ attempt: 0 }, { attempt: 0, recovered: true }])
  t.same(client.session, { id: id(2), pos: '00000000000000bb-1' })
})
