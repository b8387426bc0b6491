import { fileURLToPath } from 'node:url'
import { test } from 'tap'
import { Type } from 'typebox'
import { build, connect, pollUntil } from '../helper.js'
import { spawnLines } from '../support/child-lines.js'
import { childInstance } from '../support/child-instance.js'
import { chatInstance } from '../support/instances.js'
import { redisFor } from '../support/redis.js'

const STORM = fileURLToPath(new URL('../support/storm-clients.mjs', import.meta.url))

test('reconnect storm: an instance dies, its clients rush to the other, which admits up to its cap', async (t) => {
  const redis = await redisFor(t)
  const a = await childInstance(t, redis.url, 600)
  const b = await chatInstance(t, redis.url, { presenceTtl: 600, maxConnections: 300 })
  const { nextLine: next } = spawnLines(t, [STORM, `ws://127.0.0.1:${a.port}/presence`, `ws://127.0.0.1:${(b.server.address() as { port: number }).port}/presence`, '500'])
  t.same(JSON.parse(await next()), { open: 500 })
  const presence = b.realtime.namespace('/presence')
  await pollUntil(async () => await presence.presenceCount('room') >= 500)
  t.equal(await presence.presenceCount('room'), 500, 'presence sees the 500 on A')
  a.child.kill('SIGKILL')
  const outcome = JSON.parse(await next()) as { admitted: number, refused: Record<string, number> }
  t.same(outcome, { admitted: 300, refused: { 503: 200 } }, 'B admitted up to its cap and refused the rest with 503')
  // A's entries expire within the TTL; B's joins are there: presence converges on what is really connected.
  let count = 0
  await pollUntil(async () => (count = await presence.presenceCount('room')) === 300)
  t.equal(count, 300, 'presence converged on the 300 admitted')
})

test('an inbound flood engages the limiter; memory stays flat and other clients are served', async (t) => {
  const app = await build(t, (app) => {
    app.ws('/chat', {
      rateLimit: { max: 20, interval: 1000, maxViolations: 0 },
      messages: { say: { data: Type.String(), reply: Type.String(), handler: (_conn, text) => text } }
    })
  })
  const flooders = await Promise.all(Array.from({ length: 200 }, () => connect(t, app, '/chat')))
  const heapBefore = process.memoryUsage().heapUsed
  let limited = 0
  let replied = 0
  for (const client of flooders) {
    client.ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as { type: string }
      if (frame.type === 'reply') replied++
      else limited++
    })
  }
  // 200 clients x 100 messages in one second each.
  const started = performance.now()
  for (let burst = 0; burst < 10; burst++) {
    for (const client of flooders) for (let i = 0; i < 10; i++) client.ws.send('{"type":"say","data":"x","id":1}')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const bystander = await connect(t, app, '/chat')
  t.match(await bystander.request('say', 'still served'), { type: 'reply', data: 'still served' })
  await pollUntil(() => limited + replied >= 200 * 100)
  t.equal(limited + replied, 200 * 100, 'every message answered')
  // Each client's budget: a full bucket of 20, then 20 a second for as long as the flood really lasted
  // (on a loaded machine the ten bursts take longer than one second, and earn more).
  const seconds = (performance.now() - started) / 1000
  const budget = 200 * Math.ceil(20 + 20 * seconds)
  t.ok(replied <= budget, `at most the budget handled (${replied} of ${budget} over ${seconds.toFixed(2)} s)`)
  t.ok(replied >= 200 * 20, `at least the full buckets handled (${replied})`)
  t.equal(limited, 200 * 100 - replied, `the rest refused with RATE_LIMITED (${limited})`)
  t.ok(process.memoryUsage().heapUsed - heapBefore < 64 * 1024 * 1024, 'no growth from queued input')
})
