import { test } from 'tap'
import { Cluster, Redis } from 'ioredis'
import { LocalBroker } from '../lib/index.js'
import { Channels } from '../lib/redis/wire.js'
import { brokerContract, type ContractBackend } from './broker-contract.js'
import type { TestContext } from './helper.js'
import { redisClusterFor, redisFor } from './support/redis.js'

/*
 * The broker contract (test/broker-contract.ts), unchanged, against each
 * broker the plugin ships: in memory, Redis (one node) and a 3-master Redis
 * Cluster (sharded pub/sub), the last two started by this file on free ports.
 */

/** A probe connection per node, kept open for the whole suite (so it counts the same in every snapshot). */
function probes (t: TestContext, nodes: Array<{ host: string, port: number }>): Redis[] {
  return nodes.map(({ host, port }) => {
    const probe = new Redis({ host, port, lazyConnect: false, maxRetriesPerRequest: 1 })
    probe.on('error', () => {})
    t.teardown(() => probe.quit().then(() => {}, () => probe.disconnect()))
    return probe
  })
}

async function clientCount (probe: Redis): Promise<number> {
  return String(await probe.call('CLIENT', 'LIST')).trim().split('\n').length
}

test('broker contract: memory', async (t) => {
  await brokerContract(t, 'memory', async (): Promise<ContractBackend> => ({
    instances: 1,
    singleInstanceReason: 'the in-memory broker carries nothing between instances',
    instance: async () => ({ options: { broker: new LocalBroker() } })
  }))
})

test('broker contract: Redis', async (t) => {
  await brokerContract(t, 'redis', async (tt): Promise<ContractBackend> => {
    const redis = await redisFor(tt)
    const [probe] = probes(tt, [{ host: '127.0.0.1', port: redis.port }])
    const numsub = async (channel: string): Promise<number> => ((await probe!.call('PUBSUB', 'NUMSUB', channel)) as [string, number])[1]
    return {
      instances: 3,
      instance: async (scope) => ({ options: { redis: redis.url, redisPrefix: scope } }),
      roomSubscribers: (scope, namespace, room) => numsub(new Channels(scope).room(namespace, room)),
      namespaceSubscribers: (scope, namespace) => numsub(new Channels(scope).namespace(namespace)),
      snapshot: async (scope) => ({
        subscriptions: (await probe!.call('PUBSUB', 'CHANNELS', `${scope}#*`)) as string[],
        connections: await clientCount(probe!)
      })
    }
  })
})

test('broker contract: Redis Cluster, 3 masters, sharded pub/sub', async (t) => {
  await brokerContract(t, 'redis-cluster', async (tt): Promise<ContractBackend> => {
    const cluster = await redisClusterFor(tt)
    const nodes = probes(tt, cluster.nodes)
    // A shard channel lives on the master owning its slot; the others report 0 for it.
    const shardnumsub = async (channel: string): Promise<number> => {
      const counts = await Promise.all(nodes.map(async (node) => ((await node.call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number])[1]))
      return counts.reduce((sum, n) => sum + n, 0)
    }
    return {
      instances: 3,
      instance: async (scope) => {
        const client = new Cluster(cluster.nodes)
        client.on('error', () => {})
        return {
          options: { redis: client, redisSharded: true, redisPrefix: scope },
          // The plugin never closes a client it was given: the app's owner does.
          release: () => client.quit().then(() => {}, () => client.disconnect())
        }
      },
      roomSubscribers: (scope, namespace, room) => shardnumsub(new Channels(scope).room(namespace, room)),
      namespaceSubscribers: (scope, namespace) => shardnumsub(new Channels(scope).namespace(namespace)),
      snapshot: async (scope) => {
        const perNode = await Promise.all(nodes.map(async (node) => ({
          subscriptions: (await node.call('PUBSUB', 'SHARDCHANNELS', `${scope}#*`)) as string[],
          connections: await clientCount(node)
        })))
        return {
          subscriptions: perNode.flatMap((node) => node.subscriptions),
          connections: perNode.reduce((sum, node) => sum + node.connections, 0)
        }
      }
    }
  })
})
