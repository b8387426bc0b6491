import { once } from 'node:events'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { test } from 'tap'
import WebSocket from 'ws'
import { waitUntil, wsUrl } from '../helper.js'
import { chatInstance } from '../support/instances.js'
import { redisFor } from '../support/redis.js'

/*
 * CI-sized load (shared/HOSTILE.md G1): two instances and Redis, members of
 * one room on both, a steady stream of pushes from A. Every member gets
 * every push, once, in order; memory and connections come back down.
 * LOAD_CONNECTIONS, LOAD_RATE and LOAD_SECONDS scale it up.
 */
const CONNECTIONS = Number(process.env.LOAD_CONNECTIONS ?? 500)
const RATE = Number(process.env.LOAD_RATE ?? 50)
const SECONDS = Number(process.env.LOAD_SECONDS ?? 10)

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

test(`${CONNECTIONS} members on two instances, ${RATE} pushes/s for ${SECONDS} s: all delivered in order`, async (t) => {
  const redis = await redisFor(t)
  const a = await chatInstance(t, redis.url)
  const b = await chatInstance(t, redis.url)
  // Heap after a full GC: RSS moves with the allocator and GC timing, not with what is kept.
  gc()
  const heapBefore = process.memoryUsage().heapUsed
  const total = RATE * SECONDS
  const received = new Array<number>(CONNECTIONS).fill(0)
  const disordered: number[] = []
  const sockets: WebSocket[] = []
  let complete = 0
  let allDone!: () => void
  const done = new Promise<void>((resolve) => { allDone = resolve })
  for (let i = 0; i < CONNECTIONS; i++) {
    const ws = new WebSocket(wsUrl(i % 2 === 0 ? a : b, `/chat?user=load-${i}`))
    sockets.push(ws)
    t.teardown(() => { ws.terminate() })
    await once(ws, 'open')
    ws.send('{"type":"join","data":{"room":"load"},"id":"j"}')
    await once(ws, 'message')
    ws.on('message', (data) => {
      const seq = (JSON.parse(data.toString()) as { data: number }).data
      if (seq !== received[i]) disordered.push(i)
      received[i] = seq + 1
      if (seq === total - 1 && ++complete === CONNECTIONS) allDone()
    })
  }
  const chat = a.realtime.namespace('/chat')
  const started = Date.now()
  for (let seq = 0; seq < total; seq++) {
    await chat.to('load').emit('seq', seq)
    // A steady rate: wait for the next tick of the schedule.
    const due = started + (seq + 1) * 1000 / RATE
    const wait = due - Date.now()
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
  }
  await done
  t.same(disordered, [], 'every member got every push, in order, once')
  t.ok(received.every((count) => count === total), `${CONNECTIONS} x ${total} delivered`)
  for (const ws of sockets) ws.close()
  await Promise.all(sockets.map((ws) => ws.readyState === WebSocket.CLOSED ? undefined : once(ws, 'close')))
  await waitUntil(() => a.realtime.connectionCount + b.realtime.connectionCount === 0)
  t.equal(a.realtime.connectionCount + b.realtime.connectionCount, 0, 'connections back to zero')
  gc()
  const growth = process.memoryUsage().heapUsed - heapBefore
  t.ok(growth < 20 * 1024 * 1024, `heap growth ${(growth / 1024 / 1024).toFixed(1)} MB`)
})
