import { test } from 'tap'
import WebSocket from 'ws'
import { build, connect, opened, wsUrl, type TestClient, type TestContext } from './helper.js'
import { liveRoute } from './fixtures/live-route.js'
import { redisFor } from './support/redis.js'
import type { FastifyInstance } from 'fastify'

async function session (client: TestClient): Promise<{ id: string, recovered: boolean }> {
  const frame = await client.next()
  if (frame.type !== 'session') throw new Error(`expected a session frame, got ${JSON.stringify(frame)}`)
  return frame.data
}

async function liveMember (t: TestContext, app: FastifyInstance, user: string, room: string, query = ''): Promise<{ client: TestClient, id: string, recovered: boolean }> {
  const client = await opened(t, new WebSocket(wsUrl(app, `/live?user=${user}${query}`)))
  const s = await session(client)
  if (!s.recovered) t.match(await client.request('join', { room }), { type: 'reply', data: null })
  return { client, ...s }
}

test('memory: a lost session comes back with its rooms and every missed event, in order, exactly once', async (t) => {
  const app = await build(t, (app) => { app.ws(liveRoute({ window: 5000 })) })
  const ns = app.realtime.namespace('/live')
  const first = await liveMember(t, app, 'ann', 'r1')
  await ns.to('r1').emit('update', { room: 'r1', seq: 1, text: 'seen' })
  const seen = await first.client.next()
  t.match(seen, { type: 'update', data: { seq: 1 } })
  t.type(seen.pos, 'string')
  first.client.ws.terminate()
  await first.client.closed
  for (let seq = 2; seq <= 6; seq++) await ns.to('r1').emit('update', { room: 'r1', seq, text: 'missed' })
  await ns.to('other').emit('update', { room: 'other', seq: 0, text: 'not for ann' })
  const again = await opened(t, new WebSocket(wsUrl(app, `/live?user=ann&resume=${first.id}&pos=${seen.pos}`)))
  const s = await session(again)
  t.equal(s.recovered, true)
  t.not(s.id, first.id)
  const got = []
  for (let i = 0; i < 5; i++) got.push((await again.next()).data.seq)
  t.same(got, [2, 3, 4, 5, 6])
  await ns.to('r1').emit('update', { room: 'r1', seq: 7, text: 'live' })
  t.match(await again.next(), { type: 'update', data: { seq: 7 } })
})

async function liveInstance (t: TestContext, redis: string): Promise<FastifyInstance> {
  return build(t, (app) => { app.ws(liveRoute({ window: 5000, maxEvents: 2000 })) }, { realtime: { redis, publishTimeout: 1000, redisReadyTimeout: 2000 } })
}

test('redis: resume on another instance than the one that was lost', async (t) => {
  const redis = await redisFor(t)
  const a = await liveInstance(t, redis.url)
  const b = await liveInstance(t, redis.url)
  const first = await liveMember(t, a, 'ann', 'r1')
  await b.realtime.namespace('/live').to('r1').emit('update', { room: 'r1', seq: 1, text: 'seen' })
  const seen = await first.client.next()
  t.match(seen, { type: 'update', data: { seq: 1 } })
  first.client.ws.terminate()
  await first.client.closed
  for (let seq = 2; seq <= 21; seq++) await b.realtime.namespace('/live').to('r1').emit('update', { room: 'r1', seq, text: 'missed' })
  const again = await opened(t, new WebSocket(wsUrl(b, `/live?user=ann&resume=${first.id}&pos=${seen.pos}`)))
  const s = await session(again)
  t.equal(s.recovered, true)
  const got = []
  for (let i = 0; i < 20; i++) got.push((await again.next()).data.seq)
  t.same(got, Array.from({ length: 20 }, (_, i) => i + 2))
  await a.realtime.namespace('/live').to('r1').emit('update', { room: 'r1', seq: 22, text: 'live' })
  t.match(await again.next(), { type: 'update', data: { seq: 22 } })
})
