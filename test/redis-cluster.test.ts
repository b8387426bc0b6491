import { test } from 'tap'
import { Cluster } from 'ioredis'
import { RealtimeEmitter } from '../lib/redis/index.js'
import { member } from './helper.js'
import { chatInstance } from './support/instances.js'
import { redisClusterFor } from './support/redis.js'

/*
 * Sharded pub/sub (SSUBSCRIBE/SPUBLISH) through ioredis Cluster clients,
 * against a real 3-master Redis Cluster the suite starts on free ports.
 */

test('sharded pub/sub on a Redis Cluster carries rooms, namespaces, user commands and the emitter', async (t) => {
  const cluster = await redisClusterFor(t)
  const client = (): Cluster => {
    const c = new Cluster(cluster.nodes)
    t.teardown(() => c.disconnect())
    return c
  }
  const a = await chatInstance(t, client(), { redisSharded: true })
  const b = await chatInstance(t, client(), { redisSharded: true })
  // Rooms whose channels hash to different slots, hence different masters.
  const rooms = Array.from({ length: 6 }, (_, i) => `room-${i}`)
  const onA = await member(t, a, 'alice', rooms)
  const onB = await member(t, b, 'bob', rooms)
  for (const room of rooms) {
    onA.send({ type: 'say', data: { room, text: `to ${room}` } })
    t.same(await onB.next(), { type: 'said', data: { room, text: `to ${room}`, from: 'alice' } })
  }
  await b.realtime.namespace('/chat').emit('seq', 1)
  t.same(await onA.next(), { type: 'seq', data: 1 })
  t.same(await onB.next(), { type: 'seq', data: 1 })
  const emitter = new RealtimeEmitter({ redis: client(), sharded: true })
  await emitter.namespace('/chat').to('room-3').emit('seq', 2)
  t.same(await onA.next(), { type: 'seq', data: 2 })
  t.same(await onB.next(), { type: 'seq', data: 2 })
  await a.realtime.disconnectUser('bob')
  t.same(await onB.closed, { code: 4403, reason: 'disconnected' })
  t.equal((a.realtime.broker.stats as { ignored: number }).ignored, 0)
})
