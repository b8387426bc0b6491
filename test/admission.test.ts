import { test } from 'tap'
import { EventEmitter, once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import WebSocket from 'ws'
import { kAdmission } from '../lib/symbols.js'
import { build, guardProcess, waitUntil, wsUrl } from './helper.js'

/*
 * Connection caps hold at every instant: a place is reserved when the
 * upgrade passes the cap check, and released when the upgrade is refused by
 * a later hook, aborted by the client, timed out, or when the connection closes.
 */

interface Attempt { opened: boolean, status: number, ws: WebSocket }

/** Starts an upgrade; resolves once it opened or was refused. */
function attempt (app: FastifyInstance, path: string): Promise<Attempt> {
  const ws = new WebSocket(wsUrl(app, path))
  ws.on('error', () => {})
  return new Promise((resolve) => {
    ws.once('open', () => resolve({ opened: true, status: 101, ws }))
    ws.once('unexpected-response', (_req, res) => {
      res.resume()
      ws.terminate()
      resolve({ opened: false, status: res.statusCode ?? 0, ws })
    })
  })
}

async function concurrently (t: Parameters<typeof build>[0], app: FastifyInstance, paths: string[]): Promise<Attempt[]> {
  const attempts = await Promise.all(paths.map((path) => attempt(app, path)))
  t.teardown(() => { for (const a of attempts) a.ws.terminate() })
  return attempts
}

function tally (attempts: Attempt[]): Record<number, number> {
  const counts: Record<number, number> = {}
  for (const { status } of attempts) counts[status] = (counts[status] ?? 0) + 1
  return counts
}

const slowAuth = async (request: { query: unknown, user?: unknown }): Promise<void> => {
  await sleep(50)
  request.user = { id: (request.query as { user?: string }).user ?? 'anonymous' }
}

test('maxConnections holds under concurrent upgrades with a slow auth hook', async (t) => {
  const app = await build(t, (app) => {
    app.ws('/slow', { onRequest: slowAuth as never })
  }, { realtime: { maxConnections: 3 } })
  const attempts = await concurrently(t, app, Array.from({ length: 10 }, (_, i) => `/slow?user=u${i}`))
  t.same(tally(attempts), { 101: 3, 503: 7 }, '3 of 10 concurrent upgrades open, 7 get 503')
  t.equal(app.realtime.connectionCount, 3)
})

test('maxConnectionsPerUser and maxConnectionsPerIp hold under concurrent upgrades', async (t) => {
  const perUser = await build(t, (app) => {
    app.ws('/slow', { preValidation: slowAuth as never })
  }, { realtime: { maxConnectionsPerUser: 2 } })
  const sameUser = await concurrently(t, perUser, Array.from({ length: 10 }, () => '/slow?user=alice'))
  t.same(tally(sameUser), { 101: 2, 429: 8 }, 'one user: 2 of 10 open')

  const perIp = await build(t, (app) => {
    app.ws('/slow', { onRequest: slowAuth as never })
  }, { realtime: { maxConnectionsPerIp: 4 } })
  const sameIp = await concurrently(t, perIp, Array.from({ length: 10 }, (_, i) => `/slow?user=u${i}`))
  t.same(tally(sameIp), { 101: 4, 429: 6 }, 'one IP: 4 of 10 open')
})

test('no place leaks: 1,000 upgrades admitted, refused, aborted mid-hook or timed out leave the books empty', async (t) => {
  const assertClean = guardProcess(t)
  const CAP = 5
  const entered = new EventEmitter()
  const app = await build(t, (app) => {
    app.ws('/cap', {
      onRequest: async (request, reply) => {
        const { mode, n } = request.query as { mode: string, n: string }
        ;(request as { user?: unknown }).user = { id: `user${Number(n) % 3}` }
        if (mode === 'refuse') return reply.code(401).send({ error: 'no' })
        if (mode === 'abort') {
          // Held until the client has gone; the upgrade then goes on on a dead socket.
          const socket = request.raw.socket
          const gone = new Promise((resolve) => { socket.once('end', resolve); socket.once('close', resolve) })
          entered.emit(n)
          await gone
        }
        if (mode === 'hang') await sleep(400)
      }
    })
  }, { realtime: { maxConnections: CAP, maxConnectionsPerUser: CAP, maxConnectionsPerIp: CAP, upgradeTimeout: 100 } })
  const admission = (app.realtime as unknown as Record<symbol, { size (): Record<string, number> }>)[kAdmission]!
  const modes = ['open', 'refuse', 'abort']
  const outcomes: Record<string, number> = {}
  let n = 0
  const one = async (): Promise<void> => {
    const id = String(n++)
    // The last 40 hang past upgradeTimeout (each batch waits 100 ms for them).
    const mode = Number(id) >= 960 ? 'hang' : modes[Number(id) % modes.length]!
    const path = `/cap?mode=${mode}&n=${id}`
    let result: string
    if (mode === 'abort') {
      const ws = new WebSocket(wsUrl(app, path))
      ws.on('error', () => {})
      const closed = new Promise((resolve) => ws.once('close', resolve))
      await once(entered, id)
      ws.terminate()
      await closed
      result = 'aborted'
    } else {
      const { opened, status, ws } = await attempt(app, path)
      if (opened) {
        const closed = new Promise((resolve) => ws.once('close', resolve))
        ws.close()
        await closed
      }
      result = `${mode} ${status}`
    }
    outcomes[result] = (outcomes[result] ?? 0) + 1
  }
  // eslint-disable-next-line no-unmodified-loop-condition -- each call of one() counts n up
  while (n < 1000) {
    await Promise.all(Array.from({ length: CAP }, one))
    // Each batch leaves nothing behind: the next one has the whole cap.
    await waitUntil(() => admission.size().connections === 0)
  }
  t.same(outcomes, { 'open 101': 320, 'refuse 401': 320, aborted: 320, 'hang 503': 40 },
    'every attempt got its own outcome; none was refused for a leaked place')
  await waitUntil(() => app.realtime.connectionCount === 0)
  await waitUntil(() => admission.size().connections === 0)
  t.same(admission.size(), { connections: 0, ips: 0, users: 0 }, 'the books are empty')

  // And the caps still hold exactly.
  const attempts = await concurrently(t, app, Array.from({ length: CAP + 2 }, (_, i) => `/cap?mode=open&n=${i}`))
  t.same(tally(attempts), { 101: CAP, 503: 2 })
  for (const a of attempts) a.ws.terminate()
  await waitUntil(() => admission.size().connections === 0)
  t.same(admission.size(), { connections: 0, ips: 0, users: 0 })
  assertClean()
})
