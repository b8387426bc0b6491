import { once } from 'node:events'
import { test } from 'tap'
import Fastify from 'fastify'
import realtime from '../lib/index.js'
import type { RedisBrokerStats } from '../lib/redis/index.js'
import { guardProcess, member, pollUntil } from './helper.js'
import { freePort } from './support/example-server.js'
import { childInstance, childMember } from './support/child-instance.js'
import { startFaultProxy } from './support/fault-proxy.js'
import { chatInstance } from './support/instances.js'
import { redisFor, startRedis } from './support/redis.js'
import type { FastifyInstance } from 'fastify'

function stats (app: FastifyInstance): RedisBrokerStats {
  return app.realtime.broker.stats as RedisBrokerStats
}

test('Redis down at start: ready fails with FST_RT_BROKER_UNAVAILABLE, nothing leaks', async (t) => {
  const assertClean = guardProcess(t)
  const port = await freePort()
  const app = Fastify()
  await t.rejects(async () => {
    await app.register(realtime, { redis: `redis://127.0.0.1:${port}`, redisReadyTimeout: 300 })
    await app.ready()
  }, { code: 'FST_RT_BROKER_UNAVAILABLE', message: /Redis not ready within 300 ms/ })
  await app.close()
  // Had the connection been left behind, it would retry (and connect) once Redis starts on that port.
  const redis = await startRedis({ port })
  t.teardown(() => redis.stop())
  const clients = String(await redis.command('CLIENT', 'LIST')).trim().split('\n')
  t.equal(clients.length, 1, 'only the probe connection: the plugin gave up its own')
  assertClean()
})

test('Redis restart: local delivery goes on, pushes fail fast, cross-instance delivery resumes by itself', async (t) => {
  const assertClean = guardProcess(t)
  const redis = await redisFor(t)
  const a = await chatInstance(t, redis.url)
  const b = await chatInstance(t, redis.url)
  const localA = await member(t, a, 'a1', ['room'])
  const remoteB = await member(t, b, 'b1', ['room'])
  const chat = a.realtime.namespace('/chat')
  await chat.to('room').emit('seq', 1)
  t.same(await localA.next(), { type: 'seq', data: 1 })
  t.same(await remoteB.next(), { type: 'seq', data: 1 })

  const downA = once(a.realtime, 'broker:down')
  const downB = once(b.realtime, 'broker:down')
  await redis.kill('SIGKILL')
  await Promise.all([downA, downB])
  t.equal(a.realtime.brokerStatus, 'down')

  // During the outage: A's own members are served; the push reports the broker failure at once.
  await t.rejects(chat.to('room').emit('seq', 2), { code: 'FST_RT_BROKER_UNAVAILABLE' })
  t.same(await localA.next(), { type: 'seq', data: 2 }, 'local delivery kept working')
  // Fire-and-forget pushes during the outage are logged, never unhandled.
  chat.to('room').emit('seq', 3).catch(() => {})
  void chat.to('room').emit('seq', 4)
  t.same(await localA.next(), { type: 'seq', data: 3 })
  t.same(await localA.next(), { type: 'seq', data: 4 })

  const upA = once(a.realtime, 'broker:up')
  const upB = once(b.realtime, 'broker:up')
  await redis.restart()
  await Promise.all([upA, upB])
  t.equal(a.realtime.brokerStatus, 'up')
  const numsub = ((await redis.command('PUBSUB', 'NUMSUB', 'fastify-realtime#/chat#room#')) as [string, number])[1]
  t.equal(numsub, 2, 'both instances resubscribed')
  await chat.to('room').emit('seq', 5)
  t.same(await localA.next(), { type: 'seq', data: 5 })
  t.same(await remoteB.next(), { type: 'seq', data: 5 }, 'B missed 2-4 (at-most-once) and gets what follows')
  t.ok(stats(a).publishFailed >= 3)
  t.ok(stats(b).outages >= 1)
  assertClean()
})

test('a killed subscriber connection resubscribes; publishes that reached nobody are counted', async (t) => {
  const redis = await redisFor(t)
  const a = await chatInstance(t, redis.url)
  const b = await chatInstance(t, redis.url)
  const remoteB = await member(t, b, 'b1', ['room'])
  const before = stats(a).publishedToNobody
  await a.realtime.namespace('/chat').to('nobody-here').emit('seq', 0)
  t.equal(stats(a).publishedToNobody, before + 1, 'a publish no other instance heard is counted')

  // Every subscriber is killed, A's too: both instances go down and come back.
  const cycles = [a, b].map((app) => Promise.all([once(app.realtime, 'broker:down'), once(app.realtime, 'broker:up')]))
  await redis.command('CLIENT', 'KILL', 'TYPE', 'pubsub')
  await Promise.all(cycles)
  await a.realtime.namespace('/chat').to('room').emit('seq', 1)
  t.same(await remoteB.next(), { type: 'seq', data: 1 }, 'delivery resumed after resubscribe')
})

test('a long outage: 1,000 pushes each settle at once with a coded error; nothing queues', async (t) => {
  const assertClean = guardProcess(t)
  const redis = await redisFor(t)
  const a = await chatInstance(t, redis.url)
  const local = await member(t, a, 'a1', ['room'])
  const down = once(a.realtime, 'broker:down')
  await redis.kill('SIGKILL')
  await down
  const chat = a.realtime.namespace('/chat')
  const results = await Promise.allSettled(Array.from({ length: 1000 }, (_, i) => chat.to('room').emit('seq', i)))
  t.ok(results.every((result) => result.status === 'rejected' && (result.reason as { code: string }).code === 'FST_RT_BROKER_UNAVAILABLE'))
  for (let i = 0; i < 1000; i++) {
    if ((await local.next()).data !== i) {
      t.fail(`local message ${i} out of order`)
      break
    }
  }
  t.pass('local members got all 1,000 in order')
  t.equal(stats(a).publishFailed, 1000)
  assertClean()
})

test('a paused Redis delays but loses nothing, in order; past publishTimeout the push rejects', async (t) => {
  const redis = await redisFor(t)
  const a = await chatInstance(t, redis.url, { publishTimeout: 300 })
  const b = await chatInstance(t, redis.url)
  const remoteB = await member(t, b, 'b1', ['room'])
  const chat = a.realtime.namespace('/chat')
  await redis.pause()
  const pushes = [1, 2, 3].map((n) => chat.to('room').emit('seq', n))
  const settled = await Promise.allSettled(pushes)
  t.ok(settled.every((result) => result.status === 'rejected' && (result.reason as { code: string }).code === 'FST_RT_BROKER_UNAVAILABLE'),
    'each push rejected after publishTimeout')
  await redis.resume()
  for (const n of [1, 2, 3]) t.same(await remoteB.next(), { type: 'seq', data: n }, 'delivered late, in order')
})

test('a subscriber Redis cuts for falling behind reconnects; the loss is noticed and later messages arrive', async (t) => {
  const redis = await redisFor(t)
  await redis.command('CONFIG', 'SET', 'client-output-buffer-limit', 'pubsub 1mb 512kb 1')
  const a = await chatInstance(t, redis.url)
  const b = await childInstance(t, redis.url, 30_000)
  const onB = await childMember(t, b.port, 'b1', 'room')
  const presence = a.realtime.namespace('/presence')
  b.child.kill('SIGSTOP')
  // About 30 MiB for a subscriber that reads nothing: Redis drops it past the 1 MB hard limit.
  const pad = 'x'.repeat(10 * 1024)
  for (let i = 0; i < 3000; i++) presence.to('room').emit('presence', { pad }).catch(() => {})
  await presence.to('room').emit('presence', { pad: 'flush' })
  const subscribers = String(await redis.command('CLIENT', 'LIST', 'TYPE', 'pubsub')).trim().split('\n')
  t.equal(subscribers.length, 1, "Redis cut the stopped instance's subscriber; only A's is left")
  b.child.kill('SIGCONT')
  t.same(JSON.parse(await b.nextLine()), { broker: 'down' }, 'the instance noticed (broker:down)')
  t.same(JSON.parse(await b.nextLine()), { broker: 'up' }, 'and came back (broker:up)')
  // Whatever reached B before the cut is flushed to its client; then later messages flow again.
  await presence.to('room').emit('presence', { pad: 'after' })
  for (;;) {
    const frame = await onB.next()
    if (frame.data?.pad === 'after') break
  }
  t.pass('a message published after the reconnect arrived')
})

test('through a faulty network: latency keeps order, a black hole is detected and recovered, a reset resubscribes', async (t) => {
  const assertClean = guardProcess(t)
  const redis = await redisFor(t)
  const proxy = await startFaultProxy(redis.port)
  t.teardown(() => proxy.close())
  const a = await chatInstance(t, redis.url)
  const b = await chatInstance(t, proxy.url, { redisHealthCheckInterval: 300 })
  const onB = await member(t, b, 'b1', ['room'])
  const chat = a.realtime.namespace('/chat')

  proxy.set({ kind: 'delay', ms: 200 })
  for (let i = 0; i < 50; i++) await chat.to('room').emit('seq', i)
  const seen: number[] = []
  for (let i = 0; i < 50; i++) seen.push((await onB.next()).data)
  t.same(seen, Array.from({ length: 50 }, (_, i) => i), '200 ms more latency: all in order')

  proxy.set({ kind: 'blackhole' })
  // Only the health check can notice: the TCP connection stays open and silent.
  await once(b.realtime, 'broker:down')
  t.pass('black hole detected')
  const up = once(b.realtime, 'broker:up')
  proxy.set({ kind: 'pass' })
  await up
  await waitForSubscribers(redis, 'fastify-realtime#/chat#room#', 1)
  await chat.to('room').emit('seq', 100)
  t.same(await onB.next(), { type: 'seq', data: 100 }, 'delivery resumed after the black hole')

  const down = once(b.realtime, 'broker:down')
  const back = once(b.realtime, 'broker:up')
  proxy.reset()
  await down
  await back
  await waitForSubscribers(redis, 'fastify-realtime#/chat#room#', 1)
  await chat.to('room').emit('seq', 101)
  t.same(await onB.next(), { type: 'seq', data: 101 }, 'delivery resumed after a reset')
  assertClean()
})

/** Waits until `count` connections subscribe to `channel` (bounded). */
async function waitForSubscribers (redis: { command (...args: string[]): Promise<unknown> }, channel: string, count: number): Promise<void> {
  await pollUntil(async () => ((await redis.command('PUBSUB', 'NUMSUB', channel)) as [string, number])[1] === count)
}
