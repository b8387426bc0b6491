import { test } from 'tap'
import { Cluster } from 'ioredis'
import { RealtimeEmitter } from '../lib/redis/index.js'
import { build, member, type TestContext } from './helper.js'
import { liveRoute } from './fixtures/live-route.js'
import { liveMember, range, resumeQuery, seqsUntil } from './support/live-client.js'
import { chatInstance } from './support/instances.js'
import { redisClusterFor } from './support/redis.js'

/*
 * Sharded pub/sub (SSUBSCRIBE/SPUBLISH) through ioredis Cluster clients,
 * against a real 3-master Redis Cluster the suite starts on free ports.
 */

/** An ioredis Cluster client of the suite's cluster, disconnected at teardown. */
function clusterClient (t: TestContext, nodes: ConstructorParameters<typeof Cluster>[0]): Cluster {
  const client = new Cluster(nodes)
  t.teardown(() => client.disconnect())
  return client
}

test('sharded pub/sub on a Redis Cluster carries rooms, namespaces, user commands and the emitter', async (t) => {
  const cluster = await redisClusterFor(t)
  const client = (): Cluster => clusterClient(t, cluster.nodes)
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

test('session recovery on a Redis Cluster: a history and its channel on one slot, a resume on the other instance', async (t) => {
  const cluster = await redisClusterFor(t)
  const client = (): Cluster => clusterClient(t, cluster.nodes)
  const instance = () => build(t, (app) => { app.ws(liveRoute({ window: 10_000, maxEvents: 1_000 })) },
    { realtime: { redis: client(), redisSharded: true, publishTimeout: 1000, redisReadyTimeout: 5000 } })
  const a = await instance()
  const b = await instance()
  const ann = await liveMember(t, a, 'ann', ['r1', 'r2'])
  const bob = await liveMember(t, b, 'bob', ['r2'])
  await b.realtime.namespace('/live').to('r1').emit('update', { room: 'r1', seq: 1, text: 'seen' })
  const seen = await ann.client.next()
  ann.client.ws.terminate()
  for (let seq = 2; seq <= 50; seq++) await b.realtime.namespace('/live').to(seq % 2 === 0 ? 'r1' : 'r2').emit('update', { room: 'r', seq, text: 'x' })
  t.same(await seqsUntil(t, bob.client, 49), range(1, 24).map((i) => i * 2 + 1), 'a member on the other instance hears its room live')
  const back = await liveMember(t, b, 'ann', [], resumeQuery(ann.id, seen.pos))
  t.equal(back.recovered, true)
  await a.realtime.namespace('/live').emit('update', { room: '*', seq: 51, text: 'live' })
  t.same(await seqsUntil(t, back.client, 51), range(2, 51), 'both rooms, once, in order, then live')
  const admin = client()
  const slots = await Promise.all(['{fastify-realtime#/live#}:meta', '{fastify-realtime#/live#}:log', 'fastify-realtime#/live#']
    .map((key) => admin.cluster('KEYSLOT', key)))
  t.equal(new Set(slots).size, 1, 'the history keys and the channel share a slot')
})
