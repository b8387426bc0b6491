import { test } from 'tap'
import fastifyRedis from '@fastify/redis'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { Type } from 'typebox'
import realtime from '../lib/index.js'
import { RealtimeEmitter } from '../lib/redis/index.js'
import { connect, guardProcess, httpUrl, type TestClient, member, pollUntil } from './helper.js'
import { chatInstance } from './support/instances.js'
import { redisFor } from './support/redis.js'
import type { FastifyInstance } from 'fastify'

/*
 * Two instances in one process, one real redis-server started by the suite.
 */

/**
 * Proves what `client` did and did not receive: sends a sentinel event to
 * its user room through `app` and returns the frames that came before it.
 */
async function framesBefore (app: FastifyInstance, client: TestClient, user: string): Promise<any[]> {
  const sentinel = `sentinel-${Math.random()}`
  await app.realtime.namespace('/chat').to(`user:${user}`).emit('said', { room: '', text: sentinel, from: '' })
  const frames: any[] = []
  for (;;) {
    const frame = await client.next()
    if (frame.data?.text === sentinel) return frames
    frames.push(frame)
  }
}

test('every kind of emit crosses instances', async (t) => {
  const assertClean = guardProcess(t)
  const redis = await redisFor(t)
  const a = await chatInstance(t, redis.url)
  const b = await chatInstance(t, redis.url)
  const onA = await member(t, a, 'alice', ['lobby', 'x'])
  const onB = await member(t, b, 'bob', ['lobby', 'y'])
  const alsoB = await member(t, b, 'carol', ['x', 'y'])

  // From a ws handler on A: the room's members on B, not the sender.
  onA.send({ type: 'say', data: { room: 'lobby', text: 'from a handler' } })
  t.same(await onB.next(), { type: 'said', data: { room: 'lobby', text: 'from a handler', from: 'alice' } })
  t.same(await framesBefore(a, onA, 'alice'), [], 'sender excepted')
  t.same(await framesBefore(a, alsoB, 'carol'), [], 'not in the room')

  // From a REST handler on B to a room with a member on A.
  const response = await fetch(httpUrl(b, '/push/x'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"rest"}' })
  t.equal(response.status, 202)
  t.same(await onA.next(), { type: 'said', data: { room: 'x', text: 'rest', from: 'rest' } })
  t.same(await alsoB.next(), { type: 'said', data: { room: 'x', text: 'rest', from: 'rest' } })

  // Namespace-wide from A.
  await a.realtime.namespace('/chat').emit('seq', 1)
  for (const client of [onA, onB, alsoB]) t.same(await client.next(), { type: 'seq', data: 1 })

  // Several rooms: a member of both hears it once.
  await a.realtime.namespace('/chat').to(['x', 'y']).emit('seq', 2)
  t.same(await framesBefore(a, alsoB, 'carol'), [{ type: 'seq', data: 2 }], 'once for a member of both rooms')
  t.same(await framesBefore(a, onA, 'alice'), [{ type: 'seq', data: 2 }])
  t.same(await framesBefore(a, onB, 'bob'), [{ type: 'seq', data: 2 }])

  // Except a connection that lives on the other instance.
  const carolId = (await alsoB.request('id', null)).data as string
  await a.realtime.namespace('/chat').to('x').except(carolId).emit('seq', 3)
  t.same(await framesBefore(a, alsoB, 'carol'), [], 'excepted across instances')
  t.same(await framesBefore(a, onA, 'alice'), [{ type: 'seq', data: 3 }])

  // A single user's room.
  await b.realtime.namespace('/chat').to('user:alice').emit('seq', 4)
  t.same(await framesBefore(b, onA, 'alice'), [{ type: 'seq', data: 4 }])
  t.same(await framesBefore(b, onB, 'bob'), [])
  t.equal((a.realtime.broker.stats as Record<string, number>).ignored, 0)
  assertClean()
})

test('sequential pushes from one instance arrive in order, exactly once, on every instance', async (t) => {
  const redis = await redisFor(t)
  const a = await chatInstance(t, redis.url)
  const b = await chatInstance(t, redis.url)
  const members = [await member(t, a, 'a1', ['feed']), await member(t, b, 'b1', ['feed']), await member(t, b, 'b2', ['feed'])]
  const chat = a.realtime.namespace('/chat')
  const N = 1000
  const sent: Promise<void>[] = []
  for (let i = 1; i <= N; i++) sent.push(chat.to('feed').emit('seq', i))
  await Promise.all(sent)
  for (const client of members) {
    const received: number[] = []
    for (let i = 0; i < N; i++) received.push((await client.next()).data)
    t.same(received, Array.from({ length: N }, (_, i) => i + 1), 'all in order')
  }
  // Exactly once: nothing else is queued before a sentinel.
  t.same(await framesBefore(a, members[0]!, 'a1'), [], 'no duplicate on the sending instance')
  t.same(await framesBefore(a, members[1]!, 'b1'), [], 'no duplicate on the other instance')
})

test('an instance subscribes to a room channel only while it has a member there', async (t) => {
  const redis = await redisFor(t)
  const a = await chatInstance(t, redis.url, { redisPrefix: 'app1' })
  const b = await chatInstance(t, redis.url, { redisPrefix: 'app1' })
  const numsub = async (channel: string): Promise<number> => ((await redis.command('PUBSUB', 'NUMSUB', channel)) as [string, number])[1]
  t.equal(await numsub('app1#/chat#ops#'), 0)
  const first = await member(t, a, 'u1', ['ops'])
  t.equal(await numsub('app1#/chat#ops#'), 1, 'A subscribed once its member joined')
  const second = await member(t, a, 'u2', ['ops'])
  t.equal(await numsub('app1#/chat#ops#'), 1, 'one subscription however many members')
  const third = await member(t, b, 'u3', ['ops'])
  t.equal(await numsub('app1#/chat#ops#'), 2)
  t.equal(await numsub('app1#/chat#'), 2, 'namespace channel on both')
  t.equal(await numsub('app1#/other#'), 0, 'no subscription for a namespace without connections')
  await first.request('leave', { room: 'ops' })
  await second.close()
  await third.close()
  // Leaving unsubscribes without waiting; a round trip on the same connection orders after it.
  await first.request('leave', { room: 'ops' })
  await pollUntil(async () => await numsub('app1#/chat#ops#') === 0)
  t.equal(await numsub('app1#/chat#ops#'), 0, 'no leaked subscription')
  await first.close()
  await a.close()
  await b.close()
  const channels = await redis.command('PUBSUB', 'CHANNELS', 'app1#*') as string[]
  t.same(channels, [], 'nothing subscribed after both instances closed')
})

test('garbage and foreign messages on the channels are ignored; nobody receives them', async (t) => {
  const assertClean = guardProcess(t)
  const redis = await redisFor(t)
  const a = await chatInstance(t, redis.url)
  const client = await member(t, a, 'alice', ['lobby'])
  const garbage = [
    'not json at all',
    'v2\n{"i":"x","k":"b","n":"/chat","r":["lobby"],"x":[]}\n{"type":"said","data":{}}',
    'v1\n{not json}\n{"type":"said"}',
    'v1\n{"k":"b","n":"/chat","r":["lobby"],"x":[]}\n{"type":"said"}',
    'v1\n{"i":"x","k":"b","n":"/chat","r":"lobby","x":[]}\n{"type":"said"}',
    'v1\n{"i":"x","k":"b","n":"/chat","r":["lobby"],"x":[]}\nplain text to a browser',
    'v1\n{"i":"x","k":"u","u":5,"c":4403,"m":""}\n',
    ''
  ]
  for (const message of garbage) {
    await redis.command('PUBLISH', 'fastify-realtime#/chat#lobby#', message)
    await redis.command('PUBLISH', 'fastify-realtime#/chat#', message)
  }
  // A's own message replayed: an instance never delivers its own message twice.
  const own = `v1\n{"i":"${a.realtime.instanceId}","k":"b","n":"/chat","r":["lobby"],"x":[]}\n{"type":"seq","data":99}`
  await redis.command('PUBLISH', 'fastify-realtime#/chat#lobby#', own)
  t.same(await framesBefore(a, client, 'alice'), [], 'no client saw any of it')
  t.equal((a.realtime.broker.stats as Record<string, number>).ignored, garbage.length * 2)
  // A well-formed foreign instance's message is delivered: the format is the contract.
  await redis.command('PUBLISH', 'fastify-realtime#/chat#lobby#', own.replace(a.realtime.instanceId, 'another'))
  t.same(await client.next(), { type: 'seq', data: 99 })
  assertClean()
})

test('RealtimeEmitter reaches rooms, namespaces and users from a process without a server', async (t) => {
  const redis = await redisFor(t)
  const a = await chatInstance(t, redis.url)
  const b = await chatInstance(t, redis.url)
  const onA = await member(t, a, 'alice', ['news'])
  const onB = await member(t, b, 'bob', ['news'])
  const emitter = new RealtimeEmitter({ redis: redis.url })
  t.teardown(() => emitter.close())
  await emitter.namespace('/chat').to('news').emit('said', { room: 'news', text: 'from a worker', from: 'cron' })
  for (const client of [onA, onB]) t.same(await client.next(), { type: 'said', data: { room: 'news', text: 'from a worker', from: 'cron' } })
  await emitter.namespace('/chat').to('user:bob').emit('seq', 7)
  t.same(await framesBefore(a, onB, 'bob'), [{ type: 'seq', data: 7 }])
  t.same(await framesBefore(a, onA, 'alice'), [])
  await emitter.namespace('/chat').emit('seq', 8)
  for (const client of [onA, onB]) t.same(await client.next(), { type: 'seq', data: 8 })
  await emitter.disconnectUser('alice')
  t.same(await onA.closed, { code: 4403, reason: 'disconnected' })
  t.equal(emitter.stats.published, 4)
})

test('disconnectUser closes every connection of the user on every instance', async (t) => {
  const redis = await redisFor(t)
  const a = await chatInstance(t, redis.url)
  const b = await chatInstance(t, redis.url)
  const phone = await member(t, a, 'dave')
  const laptop = await member(t, b, 'dave')
  const other = await member(t, b, 'erin')
  await a.realtime.disconnectUser('dave')
  t.same(await phone.closed, { code: 4403, reason: 'disconnected' })
  t.same(await laptop.closed, { code: 4403, reason: 'disconnected' })
  t.same(await framesBefore(b, other, 'erin'), [], 'other users untouched')
  await b.realtime.disconnectUser('erin', 4401, 'session expired')
  t.same(await other.closed, { code: 4401, reason: 'session expired' })
})

test('works with @fastify/redis: reuses app.redis for publishing', async (t) => {
  const redis = await redisFor(t)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyRedis, { url: redis.url })
  await app.register(realtime, { redis: app.redis })
  app.ws('/r', { events: { n: Type.Number() }, onOpen: (conn) => conn.join('room') })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const other = await chatInstance(t, redis.url)
  const client = await connect(t, app, '/r')
  // The pong comes after onOpen (and its join's subscription) finished.
  client.send({ type: 'ping' })
  t.same(await client.next(), { type: 'pong' })
  t.equal(app.realtime.broker.kind, 'redis')
  const emitter = new RealtimeEmitter({ redis: app.redis })
  await emitter.namespace('/r').to('room').emit('n', 1)
  t.same(await client.next(), { type: 'n', data: 1 })
  await other.realtime.namespace('/chat').emit('seq', 1)
  await emitter.close()
  t.equal(app.redis.status, 'ready', 'the emitter left the client it was given alone')
})

test('a client passed in stays open after app.close(); the plugin quits only what it opened', async (t) => {
  const redis = await redisFor(t)
  const mine = new Redis(redis.url)
  t.teardown(() => mine.disconnect())
  const app = Fastify()
  await app.register(realtime, { redis: mine })
  app.ws('/r', {})
  await app.listen({ port: 0, host: '127.0.0.1' })
  await connect(t, app, '/r')
  const names = async (): Promise<number> => String(await redis.command('CLIENT', 'LIST')).trim().split('\n').length
  t.equal(await names(), 3, 'my client, the plugin subscriber, the probe')
  await app.close()
  t.equal(mine.status, 'ready')
  t.equal(await mine.ping(), 'PONG')
  t.equal(await names(), 2, 'the subscriber quit; my client and the probe remain')
})

test('closing Redis-backed instances leaves no timer, connection or subscription behind', async (t) => {
  const redis = await redisFor(t)
  const timers = (): number => process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length
  const baseline = timers()
  const a = await chatInstance(t, redis.url, { presenceTtl: 300 })
  const b = await chatInstance(t, redis.url, { presenceTtl: 300 })
  const client = await connect(t, a, '/presence?user=p')
  await client.request('join', { room: 'r' })
  await member(t, b, 'q', ['r'])
  await a.close()
  await b.close()
  t.ok(timers() <= baseline, 'no timer left')
  t.same(await redis.command('PUBSUB', 'CHANNELS', '*'), [], 'no subscription left')
  t.equal(String(await redis.command('CLIENT', 'LIST')).trim().split('\n').length, 1, 'only the probe is connected')
  t.same(await redis.command('KEYS', '*'), [], 'no presence entry left')
})

test('the publishes of one tick leave in one write, in order; a lone one leaves at once', async (t) => {
  const redis = await redisFor(t)
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  const a = await chatInstance(t, client)
  const b = await chatInstance(t, redis.url)
  const onB = await member(t, b, 'bob', ['room'])
  // Count the system-call-level writes of the publishing connection's stream.
  const stream = client.stream as unknown as { _write: (...args: unknown[]) => void, _writev: (...args: unknown[]) => void }
  const writes = { single: 0, batched: 0 }
  const write = stream._write.bind(stream)
  const writev = stream._writev.bind(stream)
  stream._write = (...args) => { writes.single++; write(...args) }
  stream._writev = (...args) => { writes.batched++; writev(...args) }
  t.teardown(() => { stream._write = write; stream._writev = writev })

  const chat = a.realtime.namespace('/chat')
  await Promise.all(Array.from({ length: 50 }, (_, i) => chat.to('room').emit('seq', i)))
  for (let i = 0; i < 50; i++) t.same(await onB.next(), { type: 'seq', data: i })
  t.same(writes, { single: 0, batched: 1 }, '50 publishes, one write')

  await chat.to('room').emit('seq', 50)
  t.same(await onB.next(), { type: 'seq', data: 50 })
  t.same(writes, { single: 1, batched: 1 }, 'a lone publish: one plain write')
  t.equal(a.realtime.broker.stats?.published, 51, 'every publish answered and counted')
})
