import { once } from 'node:events'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { test } from 'tap'
import WebSocket from 'ws'
import { waitUntil, wsUrl } from '../helper.js'
import { chatInstance } from '../support/instances.js'
import { redisFor } from '../support/redis.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const CYCLES = Number(process.env.CHURN_CYCLES ?? 20_000)
const CONCURRENCY = 100

/** One client's life: connect, join three rooms, leave one, close. */
async function cycle (url: string, n: number): Promise<void> {
  const ws = new WebSocket(url)
  await once(ws, 'open')
  let answers = 0
  const done = new Promise<void>((resolve) => {
    ws.on('message', () => { if (++answers === 4) resolve() })
  })
  for (const room of ['shared', `group-${n % 50}`, `own-${n}`]) ws.send(JSON.stringify({ type: 'join', data: { room }, id: room }))
  ws.send(JSON.stringify({ type: 'leave', data: { room: 'shared' }, id: 'leave' }))
  await done
  ws.close()
  await once(ws, 'close')
}

test(`${CYCLES} connect, join, leave, close cycles leave everything at its baseline`, async (t) => {
  const redis = await redisFor(t)
  const app = await chatInstance(t, redis.url)
  const clientsBefore = String(await redis.command('CLIENT', 'LIST')).trim().split('\n').length
  const timers = (): number => process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length
  const timersBefore = timers()
  const listenersBefore = app.server.listenerCount('upgrade')
  gc()
  const heapBefore = process.memoryUsage().heapUsed
  const url = wsUrl(app, '/chat?user=churn')
  let next = 0
  const started = Date.now()
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < CYCLES) await cycle(url, next++)
  }))
  const elapsed = Date.now() - started
  await waitUntil(() => app.realtime.connectionCount === 0)
  const chat = app.realtime.namespace('/chat')
  t.equal(app.realtime.connectionCount, 0, 'no connection left')
  t.same(chat.roomNames(), [], 'room index empty')
  t.same(app.realtime.userConnections('churn'), [], 'user index empty')
  t.equal(app.realtime.heartbeatTimers, 0, 'no heartbeat timer')
  t.ok(timers() <= timersBefore, 'no timer left')
  t.equal(app.server.listenerCount('upgrade'), listenersBefore, 'no listener left')
  // Unsubscribes are not awaited: a PING on the subscriber's Redis orders after them.
  await redis.command('PING')
  t.same(await redis.command('PUBSUB', 'CHANNELS', '*'), ['fastify-realtime#!commands'], 'only the command channel is subscribed')
  t.equal(String(await redis.command('CLIENT', 'LIST')).trim().split('\n').length, clientsBefore, 'Redis connections at baseline')
  gc()
  const growth = process.memoryUsage().heapUsed - heapBefore
  t.ok(growth < 10 * 1024 * 1024, `heap growth ${(growth / 1024 / 1024).toFixed(1)} MB < 10 MB`)
  t.comment(`${CYCLES} cycles in ${elapsed} ms`)
})
