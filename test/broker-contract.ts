import Fastify, { type FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import realtime, { type RealtimeOptions } from '../lib/index.js'
import { connect, type TestClient, type TestContext, waitUntil } from './helper.js'

/*
 * The broker contract: one suite, run unchanged against every broker
 * (test/broker-contract.test.ts: memory, Redis, Redis Cluster; docs/brokers.md
 * shows how to run it against your own). Every case asserts what real `ws`
 * clients observe, plus what the backend itself reports where it can
 * (subscriptions, client connections).
 *
 * Cases speak of instances A, B and C. A backend that carries nothing between
 * instances (the in-memory broker) gives one instance; A, B and C are then
 * the same app, and each case's name says so: the case still runs, and proves
 * the core's local delivery, which every broker relies on.
 */

/** One instance's options, and what to release once it has closed. */
export interface ContractInstance {
  /** Plugin options of this instance: `broker`, or `redis` and friends. */
  options: RealtimeOptions
  /** Releases what the backend opened for this instance (a client it passed in), after the app closed. */
  release?: () => Promise<void>
}

/** What the backend reports about itself, for the leak checks. */
export interface BackendSnapshot {
  /** Subscriptions the backend holds for `scope` (channel names, subjects). */
  subscriptions: string[]
  /** Client connections the backend sees, all clients together. */
  connections: number
}

/** A broker backend under test, started once for the whole suite. */
export interface ContractBackend {
  /**
   * How many apps can share this backend: 1 for a broker that carries
   * nothing between instances. The suite uses up to 3.
   */
  readonly instances: number
  /** With `instances` 1: why; printed in the name of every case that would span instances. */
  readonly singleInstanceReason?: string
  /**
   * Options of one more instance for a case. Every instance of a case gets
   * the same `scope`, and no other case uses it: isolate on it (a channel
   * prefix, a subject root).
   */
  instance (scope: string): Promise<ContractInstance>
  /**
   * How many instances receive the traffic of `room` of `namespace` from the
   * backend right now (Redis: PUBSUB NUMSUB of the room's channel). Omit it
   * when the backend keeps no subscriptions; the case then says so.
   */
  roomSubscribers? (scope: string, namespace: string, room: string): Promise<number>
  /** Same, for namespace-wide traffic. */
  namespaceSubscribers? (scope: string, namespace: string): Promise<number>
  /** The backend's view for the leak checks. Omit it when the backend holds nothing outside the process. */
  snapshot? (scope: string): Promise<BackendSnapshot>
}

const events = {
  seq: Type.Number(),
  note: Type.String()
}

const NAMESPACE = '/chat'
const OTHER = '/other'
const ORDERED = 500

/** One instance of the contract's app: `/chat` with join/leave/id, `/other` for namespace isolation. */
async function instanceApp (t: TestContext, instance: ContractInstance): Promise<{ app: FastifyInstance, release: () => Promise<void> }> {
  const app = Fastify({ logger: false })
  let released: Promise<void> | undefined
  const release = (): Promise<void> => (released ??= instance.release?.() ?? Promise.resolve())
  // Teardowns run in reverse: the app closes before what the backend opened for it.
  t.teardown(release)
  t.teardown(() => app.close())
  await app.register(realtime, { publishTimeout: 2000, ...instance.options })
  const user = async (request: { query: unknown }): Promise<void> => {
    (request as { user?: unknown }).user = { id: (request.query as { user?: string }).user ?? 'anonymous' }
  }
  app.ws(NAMESPACE, {
    preValidation: user,
    messages: {
      join: { data: Type.Object({ room: Type.String() }), handler: (conn, { room }) => conn.join(room) },
      leave: { data: Type.Object({ room: Type.String() }), handler: (conn, { room }) => { conn.leave(room) } },
      id: { reply: Type.String(), handler: (conn) => conn.id }
    },
    events,
    // Every connection hears its own user room: where the sentinels go.
    onOpen: (conn) => conn.join(`user:${conn.userId ?? ''}`)
  })
  app.ws(OTHER, { preValidation: user, events, messages: { id: { reply: Type.String(), handler: (conn) => conn.id } } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, release }
}

/** A client of the contract's app, with its connection id and user. */
interface Member {
  client: TestClient
  id: string
  user: string
  app: FastifyInstance
}

/** Connects as `user` and joins `rooms`; resolves once every join is answered (the broker delivers their traffic). */
async function member (t: TestContext, app: FastifyInstance, user: string, rooms: string[] = [], path = NAMESPACE): Promise<Member> {
  const client = await connect(t, app, `${path}?user=${user}`)
  // The id request is answered after onOpen (its join included) finished.
  const id = (await client.request('id', null)).data as string
  for (const room of rooms) t.match(await client.request('join', { room }), { type: 'reply' }, `${user} joined ${room}`)
  return { client, id, user, app }
}

/**
 * The frames `m` received before a sentinel sent to its user room from
 * `from`: proves what did not arrive, without sleeping. The sentinel crosses
 * the broker on the same path as the traffic it follows when `from` is the
 * instance that published that traffic.
 */
async function framesBefore (from: FastifyInstance, m: Member): Promise<unknown[]> {
  const sentinel = `sentinel-${Math.random()}`
  await from.realtime.namespace(NAMESPACE).to(`user:${m.user}`).emit('note', sentinel)
  const frames: unknown[] = []
  for (;;) {
    const frame = await m.client.next()
    if (frame.type === 'note' && frame.data === sentinel) return frames
    frames.push(frame)
  }
}

/**
 * `m` receives exactly `expected` (in that order) and then nothing more
 * before a sentinel from `from`. The expected frames are awaited first: the
 * sentinel may travel another way (another channel, another shard) than the
 * traffic it follows.
 */
async function receives (tt: TestContext, from: FastifyInstance, m: Member, expected: unknown[], message: string): Promise<void> {
  const received: unknown[] = []
  for (let i = 0; i < expected.length; i++) received.push(await m.client.next())
  tt.same([...received, ...await framesBefore(from, m)], expected, message)
}

/** Polls an async condition of the backend a bounded number of times (it answers over the network, no event announces it). */
async function eventually (probe: () => Promise<boolean>, attempts = 500): Promise<boolean> {
  for (let i = 0; i < attempts; i++) {
    if (await probe()) return true
    await new Promise((resolve) => setImmediate(resolve))
  }
  return false
}

let scopes = 0

/**
 * Registers the broker contract as subtests of `t`. `setup` starts the
 * backend once (registering its own teardown on the given test) and
 * returns it; each case builds fresh instances on it and closes them.
 */
export async function brokerContract (t: TestContext, name: string, setup: (t: TestContext) => Promise<ContractBackend>): Promise<void> {
  const backend = await setup(t)
  const count = Math.min(Math.max(backend.instances, 1), 3)
  const distributed = count > 1
  if (!distributed && backend.singleInstanceReason === undefined) {
    throw new TypeError('a backend with one instance must say why (singleInstanceReason)')
  }
  // Appended to the name of every case that would span instances.
  const span = distributed ? ` (${count} instances)` : ` (one instance: ${backend.singleInstanceReason}; A, B and C are the same app)`

  /** Fresh instances for one case, and how to release what the backend opened for them. */
  const started = async (tt: TestContext, scope: string): Promise<Array<{ app: FastifyInstance, release: () => Promise<void> }>> => {
    const list = []
    for (let i = 0; i < count; i++) list.push(await instanceApp(tt, await backend.instance(scope)))
    return list
  }
  /** Instances A, B, C for one case (the same app repeated when the backend has one). */
  const instances = async (tt: TestContext, scope: string): Promise<FastifyInstance[]> => {
    const apps = (await started(tt, scope)).map((instance) => instance.app)
    return [apps[0]!, apps[1 % count]!, apps[2 % count]!]
  }
  const newScope = (): string => `contract-${process.pid}-${++scopes}`

  await t.test(`${name}: events from one instance arrive in publish order on every instance${span}`, async (tt) => {
    const [a, b, c] = await instances(tt, newScope())
    const members = [await member(tt, a!, 'a1', ['feed']), await member(tt, b!, 'b1', ['feed']), await member(tt, c!, 'c1', ['feed'])]
    const expected = Array.from({ length: ORDERED }, (_, i) => i + 1)
    const chat = a!.realtime.namespace(NAMESPACE)
    // Published without awaiting each: order must hold for what is in flight together.
    await Promise.all(expected.map((i) => chat.to('feed').emit('seq', i)))
    for (const m of members) {
      const received: number[] = []
      for (let i = 0; i < ORDERED; i++) received.push((await m.client.next()).data)
      tt.same(received, expected, `${m.user}: ${ORDERED} room events, in order`)
    }
    // Namespace-wide traffic keeps its order too.
    await Promise.all(expected.map((i) => chat.emit('seq', -i)))
    for (const m of members) {
      const received: number[] = []
      for (let i = 0; i < ORDERED; i++) received.push((await m.client.next()).data)
      tt.same(received, expected.map((i) => -i), `${m.user}: ${ORDERED} namespace events, in order`)
    }
    for (const m of members) tt.same(await framesBefore(a!, m), [], `${m.user}: each exactly once`)
  })

  await t.test(`${name}: excepted connections on any instance get nothing${span}`, async (tt) => {
    const [a, b, c] = await instances(tt, newScope())
    const senderOnA = await member(tt, a!, 'sender', ['x'])
    const skippedOnB = await member(tt, b!, 'skipped', ['x'])
    const hearsOnB = await member(tt, b!, 'hears', ['x'])
    const hearsOnC = await member(tt, c!, 'also', ['x'])
    const chat = a!.realtime.namespace(NAMESPACE)
    await chat.to('x').except([senderOnA.id, skippedOnB.id]).emit('seq', 1)
    await receives(tt, a!, hearsOnB, [{ type: 'seq', data: 1 }], 'a member not excepted on B got it once')
    await receives(tt, a!, hearsOnC, [{ type: 'seq', data: 1 }], 'a member not excepted on C got it once')
    await receives(tt, a!, senderOnA, [], 'the excepted sender on A got nothing')
    await receives(tt, a!, skippedOnB, [], 'the excepted member on B got nothing')
    // Namespace-wide, excepting connections on every instance.
    await chat.except([senderOnA.id, hearsOnB.id, hearsOnC.id]).emit('seq', 2)
    await receives(tt, a!, skippedOnB, [{ type: 'seq', data: 2 }], 'only the connection not excepted got it')
    for (const m of [senderOnA, hearsOnB, hearsOnC]) await receives(tt, a!, m, [], `${m.user}: excepted from a namespace-wide emit`)
    // The connection object works as well as its id.
    const local = a!.realtime.namespace(NAMESPACE).connection(senderOnA.id)!
    await chat.to(['x']).except(local).emit('seq', 3)
    await receives(tt, a!, skippedOnB, [{ type: 'seq', data: 3 }], 'excepted by connection object: the others got it')
    await receives(tt, a!, senderOnA, [], 'excepted by connection object: nothing')
  })

  await t.test(`${name}: an emit to several rooms reaches a member of several of them once${span}`, async (tt) => {
    const [a, b, c] = await instances(tt, newScope())
    const both = [await member(tt, a!, 'both-a', ['x', 'y']), await member(tt, b!, 'both-b', ['x', 'y', 'z'])]
    const xOnly = await member(tt, c!, 'x-only', ['x'])
    const yOnly = await member(tt, b!, 'y-only', ['y'])
    const neither = await member(tt, c!, 'neither', ['z'])
    await a!.realtime.namespace(NAMESPACE).to(['x', 'y']).emit('seq', 1)
    // in() is to(), and a room named twice counts once.
    await a!.realtime.namespace(NAMESPACE).in(['y', 'x', 'y']).emit('seq', 2)
    const twice = [{ type: 'seq', data: 1 }, { type: 'seq', data: 2 }]
    for (const m of [...both, xOnly, yOnly]) await receives(tt, a!, m, twice, `${m.user}: each emit once`)
    await receives(tt, c!, neither, [], 'a member of neither room got nothing')
  })

  await t.test(`${name}: a namespace-wide emit reaches every connection of the namespace and no other${span}`, async (tt) => {
    const [a, b, c] = await instances(tt, newScope())
    const inRooms = await member(tt, a!, 'in-rooms', ['x'])
    const noRoomOnB = await member(tt, b!, 'no-room')
    const noRoomOnC = await member(tt, c!, 'no-room-c')
    const elsewhere = await member(tt, b!, 'elsewhere', [], OTHER)
    await c!.realtime.namespace(NAMESPACE).emit('note', 'to everyone')
    for (const m of [inRooms, noRoomOnB, noRoomOnC]) await receives(tt, c!, m, [{ type: 'note', data: 'to everyone' }], `${m.user}: once`)
    // An emit on /other reaches /other only; the second one follows the first on the same path.
    await c!.realtime.namespace(OTHER).emit('note', 'other only')
    await c!.realtime.namespace(OTHER).emit('note', 'sentinel')
    tt.same(await elsewhere.client.next(), { type: 'note', data: 'other only' })
    tt.same(await elsewhere.client.next(), { type: 'note', data: 'sentinel' }, 'and exactly once')
    for (const m of [inRooms, noRoomOnB, noRoomOnC]) await receives(tt, c!, m, [], `${m.user}: nothing from /other`)
  })

  await t.test(`${name}: disconnectUser closes the user's connections on every instance with the given code${span}`, async (tt) => {
    const [a, b, c] = await instances(tt, newScope())
    const dave = [await member(tt, a!, 'dave'), await member(tt, b!, 'dave'), await member(tt, c!, 'dave', [], OTHER)]
    const erin = await member(tt, b!, 'erin')
    await a!.realtime.disconnectUser('dave', 4401, 'session expired')
    for (const [i, m] of dave.entries()) {
      tt.same(await m.client.closed, { code: 4401, reason: 'session expired' }, `dave's connection on ${'ABC'[i]} closed with the given code`)
    }
    await receives(tt, b!, erin, [], 'another user untouched')
    await waitUntil(() => [a!, b!, c!].every((app) => app.realtime.userConnections('dave').length === 0))
    await c!.realtime.disconnectUser('erin')
    tt.same(await erin.client.closed, { code: 4403, reason: 'disconnected' }, 'the default code and reason')
  })

  const subscriptionsNote = backend.roomSubscribers === undefined
    ? ' (the backend keeps no subscriptions: checked through clients only)'
    : ' (and on the backend)'
  await t.test(`${name}: a room stays subscribed while a local member remains; after the last leaves its traffic stops${span}${subscriptionsNote}`, async (tt) => {
    const scope = newScope()
    const [a, b] = await instances(tt, scope)
    const rooms = async (): Promise<number> => await backend.roomSubscribers!(scope, NAMESPACE, 'ops')
    const namespaces = async (): Promise<number> => await backend.namespaceSubscribers!(scope, NAMESPACE)
    const probe = backend.roomSubscribers !== undefined
    const nsProbe = backend.namespaceSubscribers !== undefined
    if (probe) tt.equal(await rooms(), 0, 'nobody subscribed to the room before a member joins')
    const publisher = await member(tt, a!, 'publisher')
    const first = await member(tt, b!, 'first', ['ops'])
    const second = await member(tt, b!, 'second', ['ops'])
    if (probe) tt.equal(await rooms(), 1, 'one subscription for two members on one instance')
    if (nsProbe) tt.equal(await namespaces(), new Set([a, b]).size, 'every instance with a connection hears the namespace')

    tt.match(await first.client.request('leave', { room: 'ops' }), { type: 'reply' })
    if (probe) tt.equal(await rooms(), 1, 'still subscribed while a member remains')
    await a!.realtime.namespace(NAMESPACE).to('ops').emit('seq', 1)
    await receives(tt, a!, second, [{ type: 'seq', data: 1 }], 'the remaining member still hears the room')
    await receives(tt, a!, first, [], 'the member who left hears nothing')

    await second.client.close()
    await waitUntil(() => b!.realtime.namespace(NAMESPACE).roomSize('ops') === 0)
    if (probe) tt.ok(await eventually(async () => await rooms() === 0), 'unsubscribed once the last member closed')
    await a!.realtime.namespace(NAMESPACE).to('ops').emit('seq', 2)
    await receives(tt, a!, first, [], 'its traffic reaches nobody on that instance')

    // Joining again subscribes again; join/leave rounds leave one subscription, not a sum.
    for (let round = 0; round < 3; round++) {
      tt.match(await first.client.request('join', { room: 'ops' }), { type: 'reply' })
      first.client.send({ type: 'leave', data: { room: 'ops' } })
    }
    tt.match(await first.client.request('join', { room: 'ops' }), { type: 'reply' })
    if (probe) tt.equal(await rooms(), 1, 'subscribed again, once')
    // The same, with nothing awaited in between: subscribes and unsubscribes in flight together.
    for (let round = 0; round < 5; round++) {
      first.client.send({ type: 'leave', data: { room: 'ops' } })
      first.client.send({ type: 'join', data: { room: 'ops' } })
    }
    tt.match(await first.client.request('join', { room: 'ops' }), { type: 'reply' })
    if (probe) tt.equal(await rooms(), 1, 'still subscribed once after a burst of leaves and joins')
    await a!.realtime.namespace(NAMESPACE).to('ops').emit('seq', 3)
    await receives(tt, a!, first, [{ type: 'seq', data: 3 }], 'a member who joined again hears the room')
    await receives(tt, a!, publisher, [], 'a connection outside the room hears nothing')

    // The namespace subscription follows the instance's last connection the same way.
    await first.client.close()
    await waitUntil(() => b!.realtime.namespace(NAMESPACE).roomSize('ops') === 0)
    if (probe) tt.ok(await eventually(async () => await rooms() === 0), 'room unsubscribed when its last member closed')
    if (nsProbe && a !== b) tt.ok(await eventually(async () => await namespaces() === 1), 'namespace unsubscribed where its last connection closed')
  })

  await t.test(`${name}: close leaves nothing: no subscription, no client connection, no timer${span}`, async (tt) => {
    const scope = newScope()
    const timers = (): number => process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length
    const timersBefore = timers()
    const before = await backend.snapshot?.(scope)
    const list = await started(tt, scope)
    for (const [i, { app }] of list.entries()) {
      const m = await member(tt, app, `u${i}`, ['x', 'y'])
      await member(tt, app, `v${i}`, [], OTHER)
      tt.ok(app.realtime.heartbeatTimers > 0, 'a heartbeat runs while connections are open')
      await app.realtime.namespace(NAMESPACE).to('x').emit('seq', i)
      tt.same(await m.client.next(), { type: 'seq', data: i })
    }
    if (before !== undefined) tt.not((await backend.snapshot!(scope)).subscriptions.length, 0, 'the instances subscribed while open')
    for (const { app } of list) await app.close()
    for (const { app } of list) {
      tt.equal(app.realtime.connectionCount, 0, 'no connection left')
      tt.equal(app.realtime.heartbeatTimers, 0, 'no heartbeat timer left')
    }
    // What the backend opened for the instances (a client it passed in) is its own to release.
    for (const { release } of list) await release()
    if (before !== undefined) {
      const after = await backend.snapshot!(scope)
      tt.same(after.subscriptions, [], 'no subscription left on the backend')
      tt.ok(after.connections <= before.connections, `no client connection the plugin opened is left (${after.connections} now, ${before.connections} before)`)
    } else {
      tt.pass('the backend holds nothing outside this process')
    }
    tt.ok(timers() <= timersBefore, `no timer left (${timers()} now, ${timersBefore} before)`)
  })
}
