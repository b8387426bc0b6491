import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import WebSocket from 'ws'
import realtime from '../lib/index.js'
import {
  connect, shouldReconnect, ClientErrorCode, RealtimeClientError,
  type ClientOptions, type ConnectionState, type RealtimeClient, type StateInfo
} from '../lib/client/index.js'
import { backoffDelay } from '../lib/client/reconnect.js'
import { resolveReconnect } from '../lib/client/options.js'
import { guardProcess, pollUntil, waitUntil, type TestContext } from './helper.js'
import { startFaultProxy } from './support/fault-proxy.js'
import { lab, hanging, releaseHanging, saysHandled, tokensSeen } from './support/client-route.js'

type Lab = typeof lab
type LabClient = RealtimeClient<Lab>

/** A server with the `lab` route on `port` (0: any free port); closed at teardown. */
async function labServer (t: TestContext, port = 0): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  t.teardown(async () => {
    releaseHanging()
    await app.close()
  })
  await app.register(realtime, { closeTimeout: 500 })
  app.ws(lab)
  await app.listen({ port, host: '127.0.0.1' })
  return app
}

function portOf (app: FastifyInstance): number {
  return (app.server.address() as AddressInfo).port
}

let tokenCount = 0

/** A typed client of the lab route with fast retries; closed at teardown. */
function labClient (t: TestContext, port: number, options: ClientOptions<Lab> = {}): LabClient {
  const client = connect<Lab>(`ws://127.0.0.1:${port}/lab`, {
    WebSocket,
    token: () => `ok-${++tokenCount}`,
    reconnect: { initialDelay: 20, maxDelay: 100 },
    ...options
  })
  t.teardown(() => client.close())
  return client
}

/** Resolves at the client's next change to `state`. */
async function reaches (client: LabClient, state: ConnectionState): Promise<StateInfo> {
  if (state === 'open' && client.state === 'open') return { attempt: 0 }
  return new Promise((resolve) => {
    const off = client.on('state', (current, info) => {
      if (current !== state) return
      off()
      resolve(info)
    })
  })
}

/** Every `said` event of a client, in order, awaitable one by one. */
function saidInbox (client: LabClient): { next: () => Promise<{ room: string, text: string }>, seen: Array<{ room: string, text: string }> } {
  const seen: Array<{ room: string, text: string }> = []
  let read = 0
  const waiters: Array<() => void> = []
  client.on('said', (data) => {
    seen.push(data)
    waiters.shift()?.()
  })
  return {
    seen,
    next: async () => {
      if (read >= seen.length) await new Promise<void>((resolve) => waiters.push(resolve))
      return seen[read++]!
    }
  }
}

async function rejection (promise: Promise<unknown>): Promise<RealtimeClientError> {
  try {
    await promise
  } catch (err) {
    if (err instanceof RealtimeClientError) return err
    throw err
  }
  throw new Error('the promise resolved')
}

test('typed request and reply, events to the room, fire-and-forget sends', async (t) => {
  const app = await labServer(t)
  const alice = labClient(t, portOf(app))
  const bob = labClient(t, portOf(app))
  const bobSaid = saidInbox(bob)
  await Promise.all([reaches(alice, 'open'), reaches(bob, 'open')])
  t.equal(alice.state, 'open')

  t.equal(await bob.request('join', { room: 'r1' }), null, 'a handler without a return answers null')
  const before = Date.now()
  const { at } = await alice.request('say', { room: 'r1', text: 'hi' }, { timeout: 5_000 })
  t.ok(at >= before, 'the reply carries the handler\'s value')
  t.same(await bobSaid.next(), { room: 'r1', text: 'hi' }, 'the event reaches the other member, typed')

  t.equal(alice.send('say', { room: 'r1', text: 'fire and forget' }), true)
  t.same(await bobSaid.next(), { room: 'r1', text: 'fire and forget' })
})

test('the server\'s error answers reject with their code, message and details; the connection lives on', async (t) => {
  const app = await labServer(t)
  const client = labClient(t, portOf(app))

  const invalid = await rejection(client.request('say', { room: 'r1', text: 7 } as never))
  t.equal(invalid.code, 'VALIDATION_FAILED')
  t.equal(invalid.type, 'say')
  t.match(invalid.details, [{ path: '/text' }])

  const forbidden = await rejection(client.request('join', { room: 'secret' }))
  t.equal(forbidden.code, 'FORBIDDEN')
  t.equal(forbidden.message, 'not this room')

  const unknown = await rejection(client.request('nope' as never, {} as never))
  t.equal(unknown.code, 'UNKNOWN_TYPE')

  // A send has no id: its failure is reported on `error`.
  const errors: RealtimeClientError[] = []
  client.on('error', (err) => errors.push(err))
  client.send('join', { room: 'secret' })
  await waitUntil(() => errors.length === 1)
  t.equal(errors[0]!.code, 'FORBIDDEN')

  t.ok((await client.request('say', { room: 'r1', text: 'still here' })).at > 0, 'the connection is still usable')
  t.equal(client.state, 'open')
})

test('a request without an answer rejects with TIMEOUT; a late answer is ignored', async (t) => {
  const app = await labServer(t)
  const client = labClient(t, portOf(app))
  const done = guardProcess(t)
  const timedOut = await rejection(client.request('hang', undefined, { timeout: 50 }))
  t.equal(timedOut.code, ClientErrorCode.TIMEOUT)
  t.equal(timedOut.type, 'hang')
  await waitUntil(() => hanging.size === 1)
  releaseHanging()
  // The late reply arrives and must not be taken for the next request's.
  t.ok((await client.request('say', { room: 'r', text: 'x' })).at > 0)
  t.equal(client.state, 'open')
  done()
})

test('in-flight requests reject with CONNECTION_LOST when the connection drops; queued ones wait', async (t) => {
  const app = await labServer(t)
  const client = labClient(t, portOf(app))
  await reaches(client, 'open')
  const inFlight = rejection(client.request('hang', undefined, { timeout: 60_000 }))
  await waitUntil(() => hanging.size === 1)
  const reconnecting = reaches(client, 'reconnecting')
  await app.close()
  const lost = await inFlight
  t.equal(lost.code, ClientErrorCode.CONNECTION_LOST)
  const info = await reconnecting
  t.equal(info.code, 1001, 'the server said it was going away')
  t.equal(client.state, 'reconnecting')
})

test('reconnects after the server restarts (1001), replays joins, then sends the offline queue in order', async (t) => {
  const first = await labServer(t)
  const port = portOf(first)
  // Alice's reconnect waits for Bob's, so that Bob is back in the room when her queue goes out.
  let bobBack: Promise<unknown> = Promise.resolve()
  const alice = labClient(t, port, { token: async () => { await bobBack; return `ok-${++tokenCount}` } })
  const bob = labClient(t, port)
  const bobSaid = saidInbox(bob)
  await bob.request('join', { room: 'lobby' })
  await alice.request('join', { room: 'lobby' })
  await alice.request('join', { room: 'gone' })
  alice.send('leave', { room: 'gone' })
  const states: ConnectionState[] = []
  alice.on('state', (state) => states.push(state))

  const aliceBack = reaches(alice, 'reconnecting')
  // eslint-disable-next-line prefer-const -- the poll reads it before the second server exists
  let second: FastifyInstance | undefined
  bobBack = pollUntil(() => second?.realtime.namespace(lab).roomSize('lobby') === 1, { interval: 5 })
  await first.close()
  t.equal((await aliceBack).code, 1001)

  // Offline: these wait in the queue, in order.
  for (let i = 1; i <= 20; i++) t.equal(alice.send('say', { room: 'lobby', text: `m${i}` }), true)
  const queuedRequest = alice.request('say', { room: 'lobby', text: 'm21' })

  second = await labServer(t, port)
  await Promise.all([reaches(alice, 'open'), reaches(bob, 'open')])
  t.ok((await queuedRequest).at > 0, 'a request made offline is answered after the reconnect')
  const texts = []
  for (let i = 1; i <= 21; i++) texts.push((await bobSaid.next()).text)
  t.same(texts, Array.from({ length: 21 }, (_, i) => `m${i + 1}`), 'bob, rejoined, got every queued message in order')
  t.same(states.slice(-2), ['reconnecting', 'open'])

  // The rejoin restored room delivery on the new server, and the left room stayed left.
  await second.realtime.namespace(lab).to('lobby').emit('said', { room: 'lobby', text: 'from the server' })
  t.same(await bobSaid.next(), { room: 'lobby', text: 'from the server' })
  const rooms = [...second.realtime.namespace(lab).connections()].map((conn) => [...conn.rooms].sort())
  t.same(rooms, [['lobby'], ['lobby']], 'each client rejoined lobby only (gone was left before the restart)')
})

test('the token function is called for every attempt', async (t) => {
  const first = await labServer(t)
  const port = portOf(first)
  const tokens: string[] = []
  let n = 0
  const client = labClient(t, port, { token: async () => { const token = `ok-attempt-${++n}`; tokens.push(token); return token } })
  await reaches(client, 'open')
  await first.close()
  await reaches(client, 'reconnecting')
  await labServer(t, port)
  await reaches(client, 'open')
  t.ok(tokens.length >= 2, `called ${tokens.length} times`)
  t.equal(tokensSeen.at(-1), tokens.at(-1), 'the server saw the latest token')
  t.not(tokens[0], tokens.at(-1))
})

test('no reconnect after 4401, 4403 or a deliberate 1000; reconnect after 4001 and 1011', async (t) => {
  const app = await labServer(t)
  for (const [code, expected] of [[4401, 'closed'], [4403, 'closed'], [1000, 'closed'], [4001, 'reconnecting'], [1011, 'reconnecting']] as const) {
    const client = labClient(t, portOf(app))
    await reaches(client, 'open')
    const pending = rejection(client.request('hang', undefined, { timeout: 60_000 }))
    await waitUntil(() => hanging.size === 1)
    const next = new Promise<[ConnectionState, StateInfo]>((resolve) => {
      const off = client.on('state', (state, info) => { off(); resolve([state, info]) })
    })
    client.send('bye', { code, reason: `code ${code}` })
    const [state, info] = await next
    t.equal(state, expected, `${code} → ${expected}`)
    t.equal(info.code, code)
    t.equal(info.reason, `code ${code}`)
    t.equal((await pending).code, ClientErrorCode.CONNECTION_LOST)
    releaseHanging()
    if (expected === 'closed') {
      t.equal(client.send('say', { room: 'r', text: 'x' }), false, 'a closed client drops sends')
      t.equal((await rejection(client.request('say', { room: 'r', text: 'x' }))).code, ClientErrorCode.CLOSED)
    } else {
      await reaches(client, 'open')
    }
    client.close()
  }
})

/** Every state change of a client, with its info, in order. */
function stateLog (client: LabClient): Array<[ConnectionState, StateInfo]> {
  const log: Array<[ConnectionState, StateInfo]> = []
  client.on('state', (state, info) => log.push([state, info]))
  return log
}

test('a refused upgrade fails the attempt at once with its HTTP status (ws): final on a 4xx, retried on 408, 429 and 5xx', async (t) => {
  const app = await labServer(t)
  // Far above what a refusal takes: a failure reported by the timeout would say 'connect timeout'.
  const connectTimeout = 5_000
  for (const status of [401, 403, 404]) {
    let attempts = 0
    const client = labClient(t, portOf(app), { token: () => { attempts++; return `status-${status}` }, connectTimeout })
    const log = stateLog(client)
    const started = Date.now()
    await reaches(client, 'closed')
    t.same(log, [['closed', { code: 1006, reason: 'connect failed', status, attempt: 0 }]], `${status}: closed at once, with the status`)
    t.equal(attempts, 1, `${status}: no second attempt`)
    t.ok(Date.now() - started < connectTimeout, `${status}: reported in ${Date.now() - started} ms`)
  }
  for (const status of [408, 429, 503]) {
    const client = labClient(t, portOf(app), {
      token: `status-${status}`,
      connectTimeout,
      reconnect: { initialDelay: 1, maxDelay: 5, maxAttempts: 2 }
    })
    const log = stateLog(client)
    await reaches(client, 'closed')
    t.same(log.map(([state, info]) => [state, info.attempt, info.code, info.reason, info.status]), [
      ['connecting', 1, 1006, 'connect failed', status],
      ['connecting', 2, 1006, 'connect failed', status],
      ['closed', 2, 1006, 'connect failed', status]
    ], `${status}: retried until maxAttempts`)
  }
})

interface ReportedState {
  run: number
  state: ConnectionState
  info: StateInfo
  /** Milliseconds from the client's creation. */
  ms: number
}

/**
 * Runs a client with Node's own global WebSocket (undici) in a child
 * process (Node 20 exposes it behind a flag), once per options object, one
 * after the other; resolves with each run's states once the last is `closed`.
 */
async function withGlobalWebSocket (t: TestContext, url: string, runs: object[]): Promise<ReportedState[][]> {
  // The TypeScript loader this file runs under, nothing else of tap's.
  const loaders = process.execArgv.filter((arg) => arg.includes('typescript'))
  const flags = 'WebSocket' in globalThis ? [] : ['--experimental-websocket']
  const script = fileURLToPath(new URL('./support/global-websocket-client.ts', import.meta.url))
  const child = spawn(process.execPath, [...loaders, ...flags, '--no-warnings', script, url, JSON.stringify(runs)], {
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { child.kill() })
  const reported: ReportedState[][] = runs.map(() => [])
  for await (const line of createInterface({ input: child.stdout! })) {
    const state = JSON.parse(line) as ReportedState
    reported[state.run]!.push(state)
    if (state.state === 'closed' && state.run === runs.length - 1) return reported
  }
  throw new Error(`the child ended before its last client closed: ${JSON.stringify(reported)}`)
}

test('a refused upgrade fails the attempt at once with Node\'s global WebSocket (undici), which fires no close', async (t) => {
  const app = await labServer(t)
  const connectTimeout = 5_000
  const [opened, refused] = await withGlobalWebSocket(t, `ws://127.0.0.1:${portOf(app)}/lab`, [
    { token: 'ok-undici', connectTimeout },
    { token: 'status-401', connectTimeout, reconnect: { initialDelay: 1, maxDelay: 5, maxAttempts: 2 } }
  ])
  t.same(opened!.map(({ state }) => state), ['open', 'closed'], 'the global WebSocket connects when the upgrade is accepted')
  // undici tells no status: the refusal counts as a failed attempt (1006) and is retried, at once each time.
  t.same(refused!.map(({ state, info }) => [state, info.attempt, info.code, info.reason, info.status]), [
    ['connecting', 1, 1006, 'connect failed', undefined],
    ['connecting', 2, 1006, 'connect failed', undefined],
    ['closed', 2, 1006, 'connect failed', undefined]
  ])
  const took = refused!.at(-1)!.ms
  t.ok(took < connectTimeout, `three refused attempts reported in ${took} ms, connect timeout ${connectTimeout} ms`)
})

test('a call that throws sends nothing: arguments are checked before anything is queued or sent', async (t) => {
  const app = await labServer(t)
  saysHandled.length = 0
  const client = labClient(t, portOf(app))
  t.equal(client.state, 'connecting', 'offline: what is accepted is queued')
  const cyclic: Record<string, unknown> = { room: 'r' }
  cyclic.text = cyclic
  const mistakes: Array<[string, () => unknown]> = [
    ['a negative timeout', () => client.request('say', { room: 'r', text: 'timeout -5' }, { timeout: -5 })],
    ['a NaN timeout', () => client.request('say', { room: 'r', text: 'timeout NaN' }, { timeout: NaN })],
    ['a BigInt in data', () => client.send('say', { room: 'r', text: 1n } as never)],
    ['a cycle in data', () => client.request('say', cyclic as never)],
    ['a type of the protocol', () => client.send('ping' as never)],
    ['a type that is not a string', () => client.request(7 as never)]
  ]
  for (const [what, call] of mistakes) t.throws(call, TypeError, `offline, ${what} throws`)
  // Answered in order: once this is, everything queued before it has been handled.
  await client.request('say', { room: 'r', text: 'queued' })
  t.same(saysHandled.splice(0), ['queued'], 'the server handled only the call that did not throw')

  for (const [what, call] of mistakes) t.throws(call, TypeError, `open, ${what} throws`)
  await client.request('say', { room: 'r', text: 'open' })
  t.same(saysHandled.splice(0), ['open'])
  t.equal(client.state, 'open')
})

test('custom policy: shouldReconnect and maxAttempts', async (t) => {
  const app = await labServer(t)
  const port = portOf(app)
  await app.close()
  // Nothing listens: every attempt fails with 1006; three retries, then closed.
  const tokens: string[] = []
  const client = labClient(t, port, {
    token: () => { tokens.push('ok'); return 'ok-x' },
    reconnect: { initialDelay: 1, maxDelay: 5, maxAttempts: 3 }
  })
  const connecting: StateInfo[] = []
  client.on('state', (state, info) => { if (state === 'connecting') connecting.push(info) })
  const closed = await reaches(client, 'closed')
  t.equal(tokens.length, 4, 'the first attempt and 3 retries')
  t.same(connecting.map((info) => info.attempt), [1, 2, 3])
  t.equal(closed.code, 1006)

  const app2 = await labServer(t)
  const vetoed = labClient(t, portOf(app2), { reconnect: { shouldReconnect: (close) => close.code !== 4001 && shouldReconnect(close) } })
  await reaches(vetoed, 'open')
  vetoed.send('bye', { code: 4001, reason: 'slow' })
  t.equal((await reaches(vetoed, 'closed')).code, 4001)
})

test('backoff: full jitter under a doubling cap; default policy by close code', async (t) => {
  const policy = resolveReconnect({ initialDelay: 100, maxDelay: 1000 })
  if (policy === false) throw new Error('unreachable')
  t.same([0, 1, 2, 3, 4, 10].map((attempt) => backoffDelay(policy, attempt, () => 0.999)), [99, 199, 399, 799, 999, 999])
  t.same([0, 5].map((attempt) => backoffDelay(policy, attempt, () => 0)), [0, 0], 'as low as 0: full jitter')
  for (const code of [1001, 1005, 1006, 1008, 1011, 1012, 1013, 4000, 4001, 4399]) t.ok(shouldReconnect({ code, reason: '', opened: true }), `${code}: reconnect`)
  for (const code of [1000, 1002, 1003, 1007, 1009, 1010, 4400, 4401, 4403, 4999]) t.notOk(shouldReconnect({ code, reason: '', opened: true }), `${code}: stop`)
  for (const status of [500, 502, 503, 408, 429]) t.ok(shouldReconnect({ code: 1006, reason: '', status, opened: false }), `HTTP ${status}: retry`)
  for (const status of [400, 401, 403, 404]) t.notOk(shouldReconnect({ code: 1006, reason: '', status, opened: false }), `HTTP ${status}: stop`)
  t.throws(() => resolveReconnect({ initialDelay: -1 }), TypeError)
  t.equal(resolveReconnect(false), false)
})

test('onReconnect runs after the replay and before the queue; its requests go out at once', async (t) => {
  const first = await labServer(t)
  const port = portOf(first)
  const order: string[] = []
  const watcher = labClient(t, port)
  const watched = saidInbox(watcher)
  await watcher.request('join', { room: 'log' })
  // The watcher reconnects too: the hook speaks once it is back in the room, or its line could go to nobody.
  let watcherBack: Promise<unknown> = Promise.resolve()
  const client = labClient(t, port, {
    onReconnect: async (restore) => {
      order.push('hook')
      await restore.request('join', { room: 'log' })
      await watcherBack
      restore.send('say', { room: 'log', text: 'from the hook' })
    }
  })
  await reaches(client, 'open')
  const bothReconnecting = Promise.all([reaches(client, 'reconnecting'), reaches(watcher, 'reconnecting')])
  await first.close()
  await bothReconnecting
  watcherBack = reaches(watcher, 'open')
  client.send('say', { room: 'log', text: 'queued' })
  const second = await labServer(t, port)
  await Promise.all([reaches(client, 'open'), reaches(watcher, 'open')])
  t.same(order, ['hook'])
  t.same((await watched.next()).text, 'from the hook')
  t.same((await watched.next()).text, 'queued')
  t.equal(second.realtime.namespace(lab).size, 2)
})

test('a failing onReconnect is reported on error and the client goes on', async (t) => {
  const first = await labServer(t)
  const port = portOf(first)
  const errors: string[] = []
  const client = labClient(t, port, { onReconnect: () => { throw new Error('oops') } })
  client.on('error', (err) => errors.push(`${err.code}: ${err.message}`))
  await reaches(client, 'open')
  await first.close()
  await reaches(client, 'reconnecting')
  await labServer(t, port)
  await reaches(client, 'open')
  t.same(errors, ['HOOK_FAILED: onReconnect failed: oops'])
  t.ok((await client.request('say', { room: 'r', text: 'x' })).at > 0)
})

test('a refused replayed join is dropped from the replay and reported', async (t) => {
  const first = await labServer(t)
  const port = portOf(first)
  const client = labClient(t, port)
  const errors: RealtimeClientError[] = []
  client.on('error', (err) => errors.push(err))
  client.send('join', { room: 'secret' })
  await waitUntil(() => errors.length === 1)
  t.equal(errors[0]!.code, 'FORBIDDEN', 'the fire-and-forget join was refused')
  await first.close()
  await reaches(client, 'reconnecting')
  await labServer(t, port)
  await reaches(client, 'open')
  await waitUntil(() => errors.length === 2)
  t.equal(errors[1]!.code, 'FORBIDDEN')
  t.equal(errors[1]!.type, 'join', 'the replayed join was refused again, and forgotten')
})

test('offline queue: bounded, overflow refused, requests time out while queued; close() rejects what is left', async (t) => {
  const app = await labServer(t)
  const port = portOf(app)
  await app.close()
  const client = labClient(t, port, { maxQueued: 3, reconnect: { initialDelay: 10_000, maxDelay: 10_000 } })
  await reaches(client, 'connecting')
  t.equal(client.send('say', { room: 'r', text: '1' }), true)
  const timingOut = rejection(client.request('say', { room: 'r', text: '2' }, { timeout: 20 }))
  const closing = rejection(client.request('say', { room: 'r', text: '3' }))
  t.equal(client.send('say', { room: 'r', text: '4' }), false, 'the fourth does not fit')
  t.equal((await rejection(client.request('say', { room: 'r', text: '5' }))).code, ClientErrorCode.QUEUE_FULL)
  t.equal((await timingOut).code, ClientErrorCode.TIMEOUT)
  t.equal(client.send('say', { room: 'r', text: '6' }), true, 'the timed-out request left the queue')
  client.close()
  t.equal((await closing).code, ClientErrorCode.CLOSED)
  t.equal(client.state, 'closed')
})

test('liveness: a connection that goes silent is dropped after ping + timeout and reconnected', async (t) => {
  const app = await labServer(t)
  const proxy = await startFaultProxy(portOf(app))
  t.teardown(() => proxy.close())
  // Counts the client's pings as they go out.
  let pings = 0
  let pinged = (): void => {}
  class CountingWebSocket extends WebSocket {
    override send (data: unknown): void {
      if (data === '{"type":"ping"}') { pings++; pinged() }
      super.send(data as string)
    }
  }
  const client = labClient(t, proxy.port, { WebSocket: CountingWebSocket, ping: { interval: 100, timeout: 1000 } })
  await reaches(client, 'open')
  // A quiet but healthy connection answers its pings and stays open.
  const changes: ConnectionState[] = []
  const off = client.on('state', (state) => changes.push(state))
  await new Promise<void>((resolve) => { pinged = () => { if (pings >= 4) resolve() } })
  off()
  t.same(changes, [], 'four pings answered, the connection stayed open')
  proxy.set({ kind: 'blackhole' })
  const info = await reaches(client, 'reconnecting')
  t.equal(info.reason, 'ping timeout')
  proxy.set({ kind: 'pass' })
  await reaches(client, 'open')
  t.ok((await client.request('say', { room: 'r', text: 'x' })).at > 0)
})

test('connect timeout: an upgrade that never answers is dropped and retried', async (t) => {
  const sockets = new Set<Socket>()
  const silent = createServer((socket) => { sockets.add(socket) })
  silent.listen(0, '127.0.0.1')
  await once(silent, 'listening')
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
    silent.close()
  })
  const client = labClient(t, (silent.address() as AddressInfo).port, { connectTimeout: 50 })
  const info = await reaches(client, 'connecting')
  t.equal(info.reason, 'connect timeout')
  t.equal(info.attempt, 1)
  await pollUntil(() => sockets.size >= 2, { interval: 5 })
  t.pass('a second attempt was made')
})

test('options: protocols, tokenParam, requestTimeout, replay: false', async (t) => {
  const first = await labServer(t)
  const port = portOf(first)
  const client = labClient(t, port, {
    protocols: ['realtime.v1'],
    tokenParam: 'access_token',
    token: 'ok-param',
    requestTimeout: 30,
    replay: false
  })
  await reaches(client, 'open')
  const [conn] = [...first.realtime.namespace(lab).connections()]
  t.equal(conn!.socket.protocol, 'realtime.v1', 'the subprotocol was offered')
  t.equal(tokensSeen.at(-1), 'ok-param', 'the token went as ?access_token=')
  t.equal((await rejection(client.request('hang'))).code, ClientErrorCode.TIMEOUT, 'requestTimeout applies to every request')
  releaseHanging()

  await client.request('join', { room: 'lobby' })
  await first.close()
  await reaches(client, 'reconnecting')
  const second = await labServer(t, port)
  await reaches(client, 'open')
  t.ok((await client.request('say', { room: 'lobby', text: 'x' })).at > 0)
  t.equal(second.realtime.namespace(lab).roomSize('lobby'), 0, 'with replay: false, the join was not sent again')
})

test('bad arguments throw at once', async (t) => {
  t.throws(() => connect('ftp://example.com/chat', { WebSocket }), TypeError)
  t.throws(() => connect('not a url', { WebSocket }), TypeError)
  // Node 22 has a global WebSocket; Node 20, which CI runs, has none and must be told.
  if (!('WebSocket' in globalThis)) t.throws(() => connect('ws://127.0.0.1:1/chat'), /No WebSocket class/)
  t.throws(() => connect('ws://127.0.0.1:1/chat', { WebSocket, requestTimeout: 0 }), TypeError)
  t.throws(() => connect('ws://127.0.0.1:1/chat', { WebSocket, ping: { interval: -5 } }), TypeError)
})
