import { once } from 'node:events'
import { connect as tcpConnect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import { test } from 'tap'
import WebSocket from 'ws'
import { Type } from 'typebox'
import realtime, { defineRoute } from '../../lib/index.js'
import { pollUntil, type TestContext } from '../helper.js'
import { spawnLines } from '../support/child-lines.js'
import { redisFor } from '../support/redis.js'

/*
 * Runs on its own after test/stress (npm run test:stress): it measures how
 * reconnects spread over time, which other suites starving its process of
 * CPU would distort.
 *
 * A rolling restart: two instances on Redis behind a round-robin TCP
 * balancer, 1,000 typed clients (in a child process). One instance is
 * stopped with app.close(): its clients get 1001 and come back, spread by
 * the client's full-jitter backoff, on the survivor; presence converges and
 * the survivor's maxConnections holds while upgrades over it (503) are
 * retried. The route has session recovery: while the survivor broadcasts a
 * counter, no client misses or repeats a tick across the move.
 */

const CLIENTS = 1000
const SQUATTERS = 50
const INITIAL_DELAY = 500
const MAX_DELAY = 4000
const BUCKET_MS = 100
const TICKS_PER_SECOND = 20
const CHILD = fileURLToPath(new URL('../support/typed-clients.mjs', import.meta.url))

const live = defineRoute({
  path: '/live',
  presence: true,
  // Session recovery: a client of the stopped instance resumes on the survivor without missing a tick.
  recovery: true,
  events: { tick: Type.Integer() },
  preValidation: async (request, reply) => {
    const token = (request.query as { token?: string }).token
    if (token === undefined) {
      await reply.code(401).send()
      return
    }
    (request as { user?: unknown }).user = { id: token }
  },
  onOpen: (conn) => conn.join('everyone')
})

interface Instance {
  app: FastifyInstance
  port: number
  /** Connections open now, and the most ever open at once. */
  open: number
  peak: number
  /** Upgrades refused by the admission cap (503 from maxConnections). */
  refusedAtCap: number
}

async function instance (t: TestContext, redisUrl: string): Promise<Instance> {
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  const state: Instance = { app, port: 0, open: 0, peak: 0, refusedAtCap: 0 }
  await app.register(realtime, { redis: redisUrl, maxConnections: CLIENTS, presenceTtl: 5000 })
  app.ws({
    ...live,
    onOpen: (conn) => {
      state.open++
      state.peak = Math.max(state.peak, state.open)
      return live.onOpen!(conn, undefined as never)
    },
    onClose: () => { state.open-- }
  })
  app.addHook('onResponse', async (_request, reply) => {
    if (reply.statusCode === 503) state.refusedAtCap++
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  state.port = (app.server.address() as AddressInfo).port
  return state
}

/**
 * A round-robin TCP balancer: each connection goes to the next backend; a
 * backend that refuses the TCP connection (stopped) is skipped, as a load
 * balancer's passive health check would.
 */
async function balancer (t: TestContext, ports: number[]): Promise<Server> {
  let next = 0
  const sockets = new Set<Socket>()
  const server = createServer((downstream) => {
    sockets.add(downstream)
    downstream.on('error', () => {})
    downstream.on('close', () => sockets.delete(downstream))
    downstream.pause()
    const attempt = (index: number, tries: number): void => {
      const port = ports[index % ports.length]!
      const upstream = tcpConnect(port, '127.0.0.1')
      let connected = false
      upstream.on('error', () => {
        if (connected) return // its 'close' ends the downstream too
        if (tries + 1 < ports.length) attempt(index + 1, tries + 1)
        else downstream.destroy()
      })
      upstream.once('connect', () => {
        connected = true
        sockets.add(upstream)
        // end(), not destroy(): a refusal (503 then close) must reach the client whole.
        upstream.on('close', () => { sockets.delete(upstream); downstream.end() })
        downstream.on('close', () => upstream.end())
        downstream.pipe(upstream)
        upstream.pipe(downstream)
        downstream.resume()
      })
    }
    attempt(next++, 0)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    server.close()
    await once(server, 'close')
  })
  return server
}

/** Counts per BUCKET_MS bucket, one line each. */
function histogram (values: number[]): string {
  const buckets = new Map<number, number>()
  for (const value of values) {
    const bucket = Math.floor(value / BUCKET_MS) * BUCKET_MS
    buckets.set(bucket, (buckets.get(bucket) ?? 0) + 1)
  }
  return [...buckets.entries()].sort(([x], [y]) => x - y)
    .map(([bucket, n]) => `${String(bucket).padStart(5)} ms ${String(n).padStart(4)} ${'#'.repeat(Math.ceil(n / 4))}`).join('\n')
}

interface Report {
  open: number
  states: Record<string, number>
  lostAt: Array<number | null>
  backAt: Array<number | null>
  firstDelay: Array<number | null>
  refusals: Record<string, number>
}

test('rolling restart: 1,000 typed clients move to the survivor, spread by full jitter; presence converges; the cap holds', async (t) => {
  const redis = await redisFor(t)
  const a = await instance(t, redis.url)
  const b = await instance(t, redis.url)
  const lb = await balancer(t, [a.port, b.port])
  const url = `ws://127.0.0.1:${(lb.address() as AddressInfo).port}/live`

  const clients = spawnLines(t, [CHILD, url, String(CLIENTS), String(INITIAL_DELAY), String(MAX_DELAY)])
  t.same(JSON.parse(await clients.nextLine()), { open: CLIENTS })
  t.same([a.open, b.open], [CLIENTS / 2, CLIENTS / 2], 'round robin: half on each')
  await pollUntil(async () => await b.app.realtime.namespace('/live').presenceCount('everyone') === CLIENTS, { timeout: 10_000 })

  // The survivor broadcasts a counter to everyone, from before the stop until every client is back.
  let tick = 0
  const ticking = setInterval(() => { b.app.realtime.namespace('/live').emit('tick', ++tick).catch(() => {}) }, 1000 / TICKS_PER_SECOND)
  t.teardown(() => clearInterval(ticking))
  await pollUntil(() => tick >= 3)

  // Squatters hold places on the survivor directly, so that the returning clients run into its cap.
  const squatters: WebSocket[] = []
  for (let i = 0; i < SQUATTERS; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${b.port}/live?token=squatter${i}`)
    ws.on('error', () => {})
    squatters.push(ws)
    t.teardown(() => ws.terminate())
    await once(ws, 'open')
  }

  const stoppedAt = Date.now()
  await a.app.close()
  const closeTook = Date.now() - stoppedAt

  // The survivor fills up to its cap and no further; the rest are refused with 503 and retry.
  await pollUntil(() => b.open === CLIENTS && b.refusedAtCap >= SQUATTERS / 2, { timeout: 45_000 }).catch(async (err: unknown) => {
    clients.child.stdin!.write('report\n')
    const { open, states, refusals } = JSON.parse(await clients.nextLine()) as Report
    t.comment(`survivor: open ${b.open}, refused at cap ${b.refusedAtCap}, admitted ${b.app.realtime.connectionCount}; clients: open ${open}, ${JSON.stringify(states)}, failed attempts ${JSON.stringify(refusals)}`)
    throw err
  })
  const peakAtCap = b.peak
  t.ok(peakAtCap <= CLIENTS, `at its cap the survivor never held more than maxConnections (peak ${peakAtCap}; ${b.refusedAtCap} upgrades refused with 503)`)
  const releasedAt = Date.now()
  // A closing connection's place is free once its client's FIN arrives, a moment before onClose runs:
  // while the squatters leave, a newcomer's onOpen may come first (the peak below may be 1,000 + a few).
  for (const ws of squatters) ws.close()

  let report!: Report
  await pollUntil(async () => {
    clients.child.stdin!.write('report\n')
    report = JSON.parse(await clients.nextLine()) as Report
    return report.open === CLIENTS
  }, { timeout: 30_000, interval: 100 })
  const allBackAt = Date.now()
  t.same(report.states, { open: CLIENTS }, 'every client is open again')
  await pollUntil(() => b.open === CLIENTS, { timeout: 10_000 })
  t.equal(b.open, CLIENTS, 'all of them on the survivor')
  t.ok(report.refusals['503'] !== undefined && report.refusals['503'] > 0, `upgrades over the cap were refused with 503 and retried (${report.refusals['503']})`)
  await pollUntil(async () => await b.app.realtime.namespace('/live').presenceCount('everyone') === CLIENTS, { timeout: 10_000 })
  t.pass('presence on the survivor counts exactly the 1,000 clients')

  clearInterval(ticking)
  const lastTick = tick
  let ticks!: { complete: number, recovered: number, bad: unknown[] }
  await pollUntil(async () => {
    clients.child.stdin!.write(`ticks ${lastTick}\n`)
    ticks = JSON.parse(await clients.nextLine())
    return ticks.complete === CLIENTS
  }, { timeout: 10_000, interval: 100 }).catch(() => {})
  t.same(ticks.bad, [], `every client received ticks 1..${lastTick} exactly once, in order: none lost across the restart`)
  t.equal(ticks.complete, CLIENTS)
  t.equal(ticks.recovered, CLIENTS / 2, 'every client of the stopped instance resumed its session on the survivor (recovered: true)')

  const moved = report.lostAt.map((lost, i) => ({ lost, back: report.backAt[i] })).filter((c) => c.lost !== null)
  t.equal(moved.length, CLIENTS / 2, 'the stopped instance\'s clients, and only those, lost their connection')
  t.ok(moved.every((c) => c.back !== null), 'each of them came back')

  const since = moved.map(({ back }) => back! - stoppedAt)
  const outage = moved.map(({ lost, back }) => back! - lost!)
  const drawn = report.firstDelay.filter((d): d is number => d !== null)
  t.ok(drawn.every((d) => d >= 0 && d < INITIAL_DELAY), 'every first retry drew its delay in [0, initialDelay)')
  t.comment(`app.close() took ${closeTook} ms; 1001 reached the clients ${Math.min(...moved.map((c) => c.lost!)) - stoppedAt}-${Math.max(...moved.map((c) => c.lost!)) - stoppedAt} ms after it began;` +
    ` squatters released at ${releasedAt - stoppedAt} ms; all back at ${allBackAt - stoppedAt} ms; failed attempts: ${JSON.stringify(report.refusals)};` +
    ` refused at the survivor's cap: ${b.refusedAtCap}; the survivor's peak: ${peakAtCap} before the squatters left, ${b.peak} overall` +
    `\nfirst retry delay drawn (initialDelay ${INITIAL_DELAY}):\n${histogram(drawn)}` +
    `\nback open, ms after app.close() began:\n${histogram(since)}` +
    `\nback open, ms after the client's own 1001:\n${histogram(outage)}`)
  const firstBatch = moved.filter(({ back }) => back! - stoppedAt < releasedAt - stoppedAt).length
  t.ok(firstBatch <= CLIENTS / 2 - SQUATTERS, `before the squatters left, no more than the free places were taken (${firstBatch})`)
})

test('while app.close() drains, the documented readiness route answers 503 and liveness 200; new upgrades get 503', async (t) => {
  // As docs/deployment.md shows it: Fastify's own 503-while-closing off, readiness from app.realtime.closing.
  const app = Fastify({ logger: false, return503OnClosing: false })
  t.teardown(() => app.close())
  await app.register(realtime, { closeTimeout: 1000 })
  app.ws(live)
  app.get('/health', async () => ({ ok: true }))
  app.get('/ready', async (_request, reply) => {
    if (app.realtime.closing) return reply.code(503).send({ ready: false })
    return { ready: true }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `127.0.0.1:${(app.server.address() as AddressInfo).port}`
  t.equal((await fetch(`http://${base}/ready`)).status, 200)

  // A client that never answers the 1001 holds the drain open for closeTimeout.
  const stuck = new WebSocket(`ws://${base}/live?token=stuck`)
  t.teardown(() => stuck.terminate())
  await once(stuck, 'open')
  ;(stuck as unknown as { _socket: Socket })._socket.pause()
  const closing = app.close()
  await pollUntil(() => app.realtime.closing)

  t.same([(await fetch(`http://${base}/ready`)).status, (await fetch(`http://${base}/health`)).status], [503, 200])
  const refused = new WebSocket(`ws://${base}/live?token=late`)
  refused.on('error', () => {})
  const [, response] = await once(refused, 'unexpected-response') as [unknown, { statusCode: number, resume: () => void }]
  response.resume()
  t.equal(response.statusCode, 503)
  await closing
  t.equal(app.server.listening, false, 'closed once closeTimeout let the stuck client go')
})
