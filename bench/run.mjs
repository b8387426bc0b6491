// npm run bench: fastify-realtime side by side with raw ws, fastify +
// @fastify/websocket and socket.io, each in its own process, the load in
// another, all on 127.0.0.1. Prints a table, one JSON line per result, and
// the ratios the project targets. Options:
//   --repeats=3            runs of each cell (median and min-max are reported)
//   --only=echo,fanout,fanout-ws,burst,cross,memory,accept,recovery   the cells to run (all by default):
//                          echo       echo latency (p50, p99; 1 connection) and echo throughput
//                          fanout     steady fan-out N=1,000 at 50/s and N=5,000 at 10/s, broadcast by the server
//                          fanout-ws  steady fan-out N=1,000 at 50/s with a real `ws` client per member, the
//                                     ticks sent by a publisher connection and sent on to the room by the server
//                          burst      burst fan-out N=1,000, 200 back to back
//                          cross      cross-instance fan-out through redis-server (ws, socketio, realtime), with
//                                     redis-server's own CPU per broadcast (INFO CPU deltas)
//                          memory     5,000 idle connections: heap and RSS per connection
//                          accept     5,000 connections opened 100 at a time: accepted/s, server CPU per accept
//                          recovery   fastify-realtime with and without `recovery` on the route: steady fan-out N=1,000,
//                                     cross-instance N=1,000 and N=10; and Redis memory per 1,000 events kept
//   --peers=ws,fastify-ws,socketio,realtime   (also: realtime-otel, with the OpenTelemetry SDK and a Prometheus exporter on)
//   --write                puts the table into BENCHMARKS.md
import { cpus } from 'node:os'
import { rpc, runJob, withServers } from './orchestrate.mjs'
import { median, startRedis } from './support.mjs'
import { report } from './report.mjs'

const args = Object.fromEntries(process.argv.slice(2).map((arg) => {
  const [key, value] = arg.replace(/^--/, '').split('=')
  return [key, value ?? true]
}))
const REPEATS = Number(args.repeats ?? 3)
const ONLY = new Set(String(args.only ?? 'echo,fanout,fanout-ws,burst,cross,memory,accept,recovery').split(','))
const PEERS = String(args.peers ?? 'ws,fastify-ws,socketio,realtime').split(',')

/**
 * Fan-out to `n` members of one room on `members`, published by `publisher`
 * (the same server, or another instance); with `redis`, also redis-server's
 * CPU over the same window, per broadcast.
 */
async function fanout (publisher, members, servers, { n, count, rate }, redis) {
  let before = []
  let redisBefore = 0
  let sending
  const result = await runJob('members', {
    url: members.url, protocol: members.protocol, n, room: 'bench', expected: count, sample: 100, deadlineMs: 60_000
  }, async () => {
    before = await Promise.all(servers.map((server) => server.cpu()))
    if (redis !== undefined) redisBefore = await redis.cpu()
    sending = rpc(publisher.child, 'fanout', { room: 'bench', count, rate })
  })
  await sending
  const after = await Promise.all(servers.map((server) => server.cpu()))
  const redisSpent = redis === undefined ? undefined : await redis.cpu() - redisBefore
  const spent = after.map((cpu, i) => cpu - before[i])
  const perServer = servers.length === 1
    ? {}
    : Object.fromEntries(spent.map((cpu, i) => [`cpuPerDelivery${'AB'[i]}`, cpu / result.delivered]))
  return {
    p50: result.p50,
    p99: result.p99,
    cpuPerDelivery: spent.reduce((sum, cpu) => sum + cpu, 0) / result.delivered,
    ...perServer,
    ...(redisSpent === undefined ? {} : { redisCpuPerBroadcast: redisSpent / count }),
    deliveriesPerSecond: result.deliveriesPerSecond,
    delivered: result.delivered / result.expected
  }
}

/**
 * Redis memory of a recovering route's history: `events` broadcasts of about
 * 100-byte frames kept in the namespace's stream; MEMORY USAGE of the stream
 * and the INFO used_memory delta, per 1,000 events.
 */
async function historyMemory (redis, events) {
  return withServers('realtime-recovery', 1, redis.url, async (server) => {
    await redis.command('FLUSHALL')
    const before = Number((await redis.info('memory')).used_memory)
    await rpc(server.child, 'fanout', { room: 'bench', count: events, rate: 0 })
    const key = '{fastify-realtime#/bench#}:log'
    for (let i = 0; i < 400 && Number(await redis.command('XLEN', key)) < events; i++) await new Promise((resolve) => setTimeout(resolve, 25))
    const kept = Number(await redis.command('XLEN', key))
    const stream = Number(await redis.command('MEMORY', 'USAGE', key, 'SAMPLES', '0'))
    const used = Number((await redis.info('memory')).used_memory) - before
    return { eventsKept: kept, streamBytesPer1000: stream / kept * 1000, usedMemoryPer1000: used / kept * 1000 }
  })
}

const scenarios = [
  {
    name: 'echo latency',
    key: 'echo',
    peers: PEERS,
    async cell (peer) {
      return withServers(peer, 1, undefined, async (server) => {
        const { p50, p99 } = await runJob('echoLatency', { url: server.url, protocol: server.protocol, count: 5000, deadlineMs: 60_000 })
        return { p50, p99 }
      })
    }
  },
  {
    name: 'echo throughput (100 conns × 32 in flight, 5 s)',
    key: 'echo',
    peers: PEERS,
    async cell (peer) {
      return withServers(peer, 1, undefined, async (server) => {
        const marks = []
        const result = await runJob('echoThroughput', { url: server.url, protocol: server.protocol, connections: 100, inFlight: 32, seconds: 5 },
          async () => { marks.push(await server.cpu()) })
        return { roundTripsPerSecond: result.roundTripsPerSecond, cpuPerRoundTrip: (marks[1] - marks[0]) / result.roundTrips }
      })
    }
  },
  ...[[1000, 50], [5000, 10]].map(([n, rate]) => ({
    name: `fan-out N=${n}, 200 broadcasts at ${rate}/s`,
    key: 'fanout',
    peers: PEERS,
    async cell (peer) {
      return withServers(peer, 1, undefined, (server) => fanout(server, server, [server], { n, count: 200, rate }))
    }
  })),
  {
    name: 'ws-client fan-out N=1000, 200 broadcasts at 50/s sent by a publisher connection',
    key: 'fanout-ws',
    peers: PEERS,
    async cell (peer) {
      return withServers(peer, 1, undefined, async (server) => {
        const marks = []
        const result = await runJob('published', {
          url: server.url, protocol: server.protocol, n: 1000, room: 'bench', ticks: 200, rate: 50, sample: 100, deadlineMs: 60_000
        }, async () => { marks.push(await server.cpu()) })
        return {
          p50: result.p50,
          p99: result.p99,
          cpuPerDelivery: (marks[1] - marks[0]) / result.delivered,
          delivered: result.delivered / result.expected
        }
      })
    }
  },
  {
    name: 'burst fan-out N=1000, 200 back to back',
    key: 'burst',
    peers: PEERS,
    async cell (peer) {
      return withServers(peer, 1, undefined, async (server) => {
        const { deliveriesPerSecond, delivered } = await fanout(server, server, [server], { n: 1000, count: 200, rate: 0 })
        return { deliveriesPerSecond, delivered }
      })
    }
  },
  ...[1000, 10].map((n) => ({
    name: `cross-instance fan-out N=${n} on B, 200 broadcasts at 50/s from A`,
    key: 'cross',
    peers: PEERS.filter((peer) => peer === 'ws' || peer === 'socketio' || peer === 'realtime'),
    async cell (peer, redis) {
      return withServers(peer, 2, redis.url, (a, b) => fanout(a, b, [a, b], { n, count: 200, rate: 50 }, redis))
    }
  })),
  {
    name: 'recovery: fan-out N=1000, 200 broadcasts at 50/s',
    key: 'recovery',
    peers: ['realtime', 'realtime-recovery'],
    async cell (peer) {
      return withServers(peer, 1, undefined, (server) => fanout(server, server, [server], { n: 1000, count: 200, rate: 50 }))
    }
  },
  ...[1000, 10].map((n) => ({
    name: `recovery: cross-instance fan-out N=${n} on B, 200 broadcasts at 50/s from A`,
    key: 'recovery',
    redis: true,
    peers: ['realtime', 'realtime-recovery'],
    async cell (peer, redis) {
      return withServers(peer, 2, redis.url, (a, b) => fanout(a, b, [a, b], { n, count: 200, rate: 50 }, redis))
    }
  })),
  {
    name: 'recovery: Redis memory of the history, 10,000 events of about 100 bytes',
    key: 'recovery',
    redis: true,
    peers: ['realtime-recovery'],
    cell: (_peer, redis) => historyMemory(redis, 10_000)
  },
  {
    name: 'idle connections N=5000',
    key: 'memory',
    peers: PEERS,
    async cell (peer) {
      return withServers(peer, 1, undefined, async (server) => {
        const { child } = server
        const before = await rpc(child, 'mem')
        let after
        const result = await runJob('idle', { url: server.url, protocol: server.protocol, n: 5000 }, async () => {
          after = await rpc(child, 'mem')
        })
        return {
          connectionsPerSecond: result.connectionsPerSecond,
          heapPerConnection: (after.heapUsed - before.heapUsed) / 5000,
          rssPerConnection: (after.rss - before.rss) / 5000
        }
      })
    }
  },
  {
    name: 'accept rate: 5000 connections, 100 opening at a time',
    key: 'accept',
    peers: PEERS,
    async cell (peer) {
      return withServers(peer, 1, undefined, async (server) => {
        const marks = []
        const result = await runJob('accept', { url: server.url, protocol: server.protocol, n: 5000, window: 100 },
          async () => { marks.push(await server.cpu()) })
        return { acceptsPerSecond: result.acceptsPerSecond, cpuPerAccept: (marks[1] - marks[0]) / result.accepted }
      })
    }
  }
]

const results = []
let redis
const started = Date.now()
try {
  for (const scenario of scenarios) {
    if (!ONLY.has(scenario.key)) continue
    const needsRedis = scenario.key === 'cross' || scenario.redis === true
    if (needsRedis) redis = await startRedis()
    // Peers take turns within each repeat, so a drift of the machine during the scenario touches all of them.
    const runsOf = new Map(scenario.peers.map((peer) => [peer, []]))
    for (let repeat = 0; repeat < REPEATS; repeat++) {
      for (const peer of scenario.peers) runsOf.get(peer).push(await scenario.cell(peer, redis))
    }
    for (const [peer, runs] of runsOf) {
      const row = { scenario: scenario.name, peer: needsRedis ? `${peer}+redis` : peer, runs }
      const metrics = {}
      for (const metric of Object.keys(runs[0])) {
        const values = runs.map((run) => run[metric])
        metrics[metric] = { median: median(values), min: Math.min(...values), max: Math.max(...values) }
      }
      row.metrics = metrics
      results.push(row)
      console.log(JSON.stringify({ scenario: row.scenario, peer: row.peer, ...metrics }))
    }
    if (needsRedis) {
      await redis.stop()
      redis = undefined
    }
  }
} finally {
  await redis?.stop().catch(() => {})
}

const machine = `${cpus().length} cores (${cpus()[0]?.model.trim()}), Node ${process.version}, ${new Date().toISOString().slice(0, 10)}, ${REPEATS} runs per cell, ${Math.round((Date.now() - started) / 1000)} s`
await report(results, machine, { write: args.write === true })
