import { test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { presenceRoute } from './fixtures/chat-route.js'
import { connect, pollUntil, type TestClient, type TestContext } from './helper.js'
import { childInstance, childMember } from './support/child-instance.js'
import { chatInstance } from './support/instances.js'
import { redisFor } from './support/redis.js'
import realtime from '../lib/index.js'

const TTL = 600

async function presenceMember (t: TestContext, app: FastifyInstance, user: string, room: string): Promise<TestClient> {
  const client = await connect(t, app, `/presence?user=${user}`)
  t.match(await client.request('join', { room }), { type: 'reply' })
  return client
}

/** Presence events until `count` of them match `action`. */
async function presenceEvents (client: TestClient, action: string, count: number): Promise<any[]> {
  const events: any[] = []
  while (events.length < count) {
    const frame = await client.next()
    if (frame.type === 'presence' && frame.data.action === action) events.push(frame.data)
  }
  return events
}

test('presence in memory: who is in a room, join and leave events, disabled routes refuse', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime, {})
  app.ws(presenceRoute)
  app.ws('/plain', {})
  await app.listen({ port: 0, host: '127.0.0.1' })
  const alice = await connect(t, app, '/presence?user=alice')
  await alice.request('join', { room: 'lobby' })
  const bob = await connect(t, app, '/presence?user=bob')
  await bob.request('join', { room: 'lobby' })
  t.match(await alice.next(), { type: 'presence', data: { action: 'join', room: 'lobby', userId: 'bob' } })
  const ns = app.realtime.namespace('/presence')
  t.same((await ns.presence('lobby')).map((entry) => entry.userId).sort(), ['alice', 'bob'])
  t.equal(await ns.presenceCount('lobby'), 2)
  t.match((await ns.presence('lobby'))[0], { instanceId: app.realtime.instanceId })
  await bob.close()
  t.match(await alice.next(), { type: 'presence', data: { action: 'leave', room: 'lobby', userId: 'bob' } })
  t.equal(await ns.presenceCount('lobby'), 1)
  await t.rejects(app.realtime.namespace('/plain').presence('x'), { code: 'FST_RT_PRESENCE_DISABLED' })
})

test('cluster-wide presence: counts and entries from Redis, join and leave events across instances', async (t) => {
  const redis = await redisFor(t)
  const a = await chatInstance(t, redis.url, { presenceTtl: TTL })
  const b = await chatInstance(t, redis.url, { presenceTtl: TTL })
  const alice = await presenceMember(t, a, 'alice', 'lobby')
  const bob = await presenceMember(t, b, 'bob', 'lobby')
  t.match(await alice.next(), { type: 'presence', data: { action: 'join', room: 'lobby', userId: 'bob' } }, 'join event crossed instances')
  for (const app of [a, b]) {
    const entries = await app.realtime.namespace('/presence').presence('lobby')
    t.same(entries.map((entry) => [entry.userId, entry.instanceId]).sort(),
      [['alice', a.realtime.instanceId], ['bob', b.realtime.instanceId]])
    t.equal(await app.realtime.namespace('/presence').presenceCount('lobby'), 2)
  }
  await bob.request('leave', { room: 'lobby' })
  t.match(await alice.next(), { type: 'presence', data: { action: 'leave', userId: 'bob' } })
  t.equal(await a.realtime.namespace('/presence').presenceCount('lobby'), 1)
  await bob.close()
  await alice.close()
  await a.close()
  await b.close()
  t.same(await redis.command('KEYS', '*presence*'), [], 'graceful shutdown leaves no entries')
})

test('an instance killed with SIGKILL: its entries expire within the TTL and the others get leave events', async (t) => {
  const redis = await redisFor(t)
  const b = await chatInstance(t, redis.url, { presenceTtl: TTL })
  const watcher = await presenceMember(t, b, 'watcher', 'room')
  const { port, child } = await childInstance(t, redis.url, TTL)
  await childMember(t, port, 'doomed-1', 'room')
  await childMember(t, port, 'doomed-2', 'room')
  await presenceEvents(watcher, 'join', 2)
  const ns = b.realtime.namespace('/presence')
  t.equal(await ns.presenceCount('room'), 3)
  // The TTL bound, read from Redis rather than a clock: no entry of the dying instance outlives kill time + TTL.
  const scores = (await redis.command('ZRANGE', 'fastify-realtime:presence:/presence:room', '0', '-1', 'WITHSCORES') as unknown[]).flat() as string[]
  const killedAt = Date.now()
  child.kill('SIGKILL')
  const expiries = scores.filter((_, i) => i % 2 === 1).map(Number)
  t.ok(expiries.every((expiry) => expiry <= killedAt + TTL), 'every entry expires within the TTL of the kill')
  const leaves = await presenceEvents(watcher, 'leave', 2)
  t.same(leaves.map((event) => event.userId).sort(), ['doomed-1', 'doomed-2'])
  t.same((await ns.presence('room')).map((entry) => entry.userId), ['watcher'])
  const numsub = ((await redis.command('PUBSUB', 'NUMSUB', 'fastify-realtime#/presence#room#')) as [string, number])[1]
  t.equal(numsub, 1, "the dead instance's subscriptions went with its connection")
})

test('a hung instance (SIGSTOP) does not stall presence queries; its entries expire, and return when it resumes', async (t) => {
  const redis = await redisFor(t)
  const b = await chatInstance(t, redis.url, { presenceTtl: TTL })
  const watcher = await presenceMember(t, b, 'watcher', 'room')
  const { port, child } = await childInstance(t, redis.url, TTL)
  await childMember(t, port, 'sleepy', 'room')
  await presenceEvents(watcher, 'join', 1)
  child.kill('SIGSTOP')
  t.teardown(() => { child.kill('SIGCONT') })
  const ns = b.realtime.namespace('/presence')
  t.equal(await ns.presenceCount('room'), 2, 'answered from Redis while the instance hangs')
  await presenceEvents(watcher, 'leave', 1)
  t.equal(await ns.presenceCount('room'), 1, 'expired after the TTL')
  child.kill('SIGCONT')
  // Its next refresh (every TTL / 3) writes its live entries again; no event says when, so poll, bounded.
  let count = 1
  await pollUntil(async () => (count = await ns.presenceCount('room')) === 2, { interval: TTL / 10, timeout: 10 * TTL })
  t.equal(count, 2, 'back once the instance refreshes')
})

test('a dead peer found by the heartbeat leaves its rooms once, and members on every instance hear it', async (t) => {
  const redis = await redisFor(t)
  const a = await chatInstance(t, redis.url, { presenceTtl: 30_000, heartbeat: { interval: 100, timeout: 50 } })
  const b = await chatInstance(t, redis.url, { presenceTtl: 30_000, heartbeat: false })
  const watcher = await presenceMember(t, b, 'watcher', 'room')
  const dead = await presenceMember(t, a, 'dead', 'room')
  await presenceEvents(watcher, 'join', 1)
  ;(dead.ws as unknown as { _socket: { pause (): void } })._socket.pause()
  const [leave] = await presenceEvents(watcher, 'leave', 1)
  t.match(leave, { action: 'leave', room: 'room', userId: 'dead' })
  t.equal(await b.realtime.namespace('/presence').presenceCount('room'), 1, 'presence updated at once, not at TTL')
  // Exactly once: the next presence frame is the sentinel's join, not a second leave.
  await presenceMember(t, a, 'sentinel', 'room')
  t.match(await watcher.next(), { type: 'presence', data: { action: 'join', userId: 'sentinel' } })
})
