import { once } from 'node:events'
import { setTimeout as delay } from 'node:timers/promises'
import { test } from 'tap'
import { Redis } from 'ioredis'
import type { FastifyInstance } from 'fastify'
import WebSocket from 'ws'
import { build, guardProcess, pollUntil, wsUrl, type TestContext } from './helper.js'
import { liveRoute } from './fixtures/live-route.js'
import { liveMember, pushUpdates, range, resumeQuery, seqsUntil } from './support/live-client.js'
import { redisFor } from './support/redis.js'
import type { RecoveryOptions } from '../lib/index.js'
import { RealtimeEmitter } from '../lib/redis/index.js'
import { withPosition } from '../lib/history.js'
import { encodeEvent } from '../lib/protocol/envelope.js'

/*
 * Session recovery (route option `recovery`) as a bare `ws` client sees it:
 * only the documented frames and query parameters.
 */

async function memoryApp (t: TestContext, recovery: RecoveryOptions = { window: 10_000, maxEvents: 2_000 }): Promise<FastifyInstance> {
  return build(t, (app) => { app.ws(liveRoute(recovery)) })
}

async function redisApp (t: TestContext, url: string, recovery: RecoveryOptions = { window: 10_000, maxEvents: 2_000 }): Promise<FastifyInstance> {
  return build(t, (app) => { app.ws(liveRoute(recovery)) }, { realtime: { redis: url, publishTimeout: 1000, redisReadyTimeout: 2000 } })
}

/** The scenario: lost while 1,000 updates go out at 500/s, back 2 s later. */
async function lostDuringBurst (t: TestContext, lostOn: FastifyInstance, pushThrough: FastifyInstance, resumeOn: FastifyInstance): Promise<void> {
  const assertClean = guardProcess(t)
  const first = await liveMember(t, lostOn, 'ann', ['r1'])
  const bystander = await liveMember(t, lostOn, 'bob', ['r1'])
  await pushThrough.realtime.namespace('/live').to('r1').emit('update', { room: 'r1', seq: 0, text: 'before' })
  const seen = await first.client.next()
  t.match(seen, { type: 'update', data: { seq: 0 } })
  t.match(seen.pos, /^[0-9a-f]{16}-\d+$/, 'an opaque position on every broadcast')
  t.match(await bystander.client.next(), { data: { seq: 0 } })

  first.client.ws.terminate()
  const lostAt = Date.now()
  await pushUpdates(pushThrough, 'r1', 1, 1000, 500)
  await delay(Math.max(0, 2000 - (Date.now() - lostAt)))

  const again = await liveMember(t, resumeOn, 'ann', ['r1'], resumeQuery(first.id, seen.pos))
  t.equal(again.recovered, true, 'recovered')
  t.not(again.id, first.id, 'the session goes on under a new id')
  const live = pushThrough.realtime.namespace('/live').to('r1').emit('update', { room: 'r1', seq: 1001, text: 'live' })
  const seqs = await seqsUntil(t, again.client, 1001)
  await live
  t.same(seqs, range(1, 1001), 'every missed update once, in order, before the live one')
  t.same(await again.client.request('rooms', null, 'r-rooms'), { type: 'reply', id: 'r-rooms', data: ['r1'] }, 'back in its rooms without joining')
  t.same(await seqsUntil(t, bystander.client, 1001), range(1, 1001), 'a member that stayed got the same')
  assertClean()
}

test('memory: a member lost during 1,000 updates at 500/s resumes 2 s later and gets all of them, once, in order', async (t) => {
  const app = await memoryApp(t)
  await lostDuringBurst(t, app, app, app)
})

test('redis: lost on A while 1,000 updates go through B, resumed on B 2 s later: all of them, once, in order', async (t) => {
  const redis = await redisFor(t)
  const a = await redisApp(t, redis.url)
  const b = await redisApp(t, redis.url)
  await lostDuringBurst(t, a, b, b)
})

test('memory: after the window, the session is gone: recovered false, a fresh session, no rooms', async (t) => {
  const app = await memoryApp(t, { window: 200, maxEvents: 100 })
  const first = await liveMember(t, app, 'ann', ['r1'])
  first.client.ws.terminate()
  await app.realtime.namespace('/live').to('r1').emit('update', { room: 'r1', seq: 1, text: 'missed' })
  await delay(400)
  const again = await liveMember(t, app, 'ann', [], resumeQuery(first.id))
  t.equal(again.recovered, false)
  t.same(await again.client.request('rooms', null, 'rooms'), { type: 'reply', id: 'rooms', data: [] })
})

test('memory: a gap the history no longer covers gives recovered false', async (t) => {
  const app = await memoryApp(t, { window: 10_000, maxEvents: 5 })
  const first = await liveMember(t, app, 'ann', ['r1'])
  await app.realtime.namespace('/live').to('r1').emit('update', { room: 'r1', seq: 1, text: 'seen' })
  const seen = await first.client.next()
  first.client.ws.terminate()
  await pushUpdates(app, 'r1', 2, 6, 10_000)
  const again = await liveMember(t, app, 'ann', [], resumeQuery(first.id, seen.pos))
  t.equal(again.recovered, false, 'six missed, five kept')
})

test('memory: a session still open elsewhere (a half-open socket) is taken over; the stale one closes with 4409', async (t) => {
  const app = await memoryApp(t)
  const first = await liveMember(t, app, 'ann', ['r1'])
  const again = await liveMember(t, app, 'ann', ['r1'], resumeQuery(first.id))
  t.equal(again.recovered, true)
  t.same(await first.client.closed, { code: 4409, reason: 'session resumed elsewhere' })
  await app.realtime.namespace('/live').to('r1').emit('update', { room: 'r1', seq: 1, text: 'live' })
  t.same(await seqsUntil(t, again.client, 1), [1])
})

for (const backend of ['memory', 'redis'] as const) {
  test(`${backend}: claims that are not the user's own, forged or malformed give a fresh session and nothing of the old one`, async (t) => {
    const assertClean = guardProcess(t)
    const app = backend === 'memory' ? await memoryApp(t) : await redisApp(t, (await redisFor(t)).url)
    const ann = await liveMember(t, app, 'ann', ['secret'])
    const ns = app.realtime.namespace('/live')
    await ns.to('secret').emit('update', { room: 'secret', seq: 1, text: 'for ann' })
    const seen = await ann.client.next()
    ann.client.ws.terminate()
    await ns.to('secret').emit('update', { room: 'secret', seq: 2, text: 'missed by ann' })
    const epoch = (seen.pos as string).split('-')[0]!
    const claims: Array<[string, string]> = [
      ['another user presenting it', `&resume=${ann.id}&pos=${seen.pos}`],
      ['a forged id', `&resume=${'A'.repeat(22)}&pos=${seen.pos}`],
      ['a malformed id', `&resume=${encodeURIComponent('{"x":1}')}`],
      ['a malformed position', `&resume=${ann.id}&pos=${encodeURIComponent('1e9; DROP')}`],
      ['a position from the future', `&resume=${ann.id}&pos=${epoch}-999999`],
      ['a position of another epoch', `&resume=${ann.id}&pos=0123456789abcdef-1`]
    ]
    for (const [what, query] of claims) {
      const user = what === 'another user presenting it' ? 'mallory' : 'ann'
      const other = await liveMember(t, app, user, [], query)
      t.equal(other.recovered, false, `${what}: recovered false`)
      t.same(await other.client.request('rooms', null, 'rooms'), { type: 'reply', id: 'rooms', data: [] }, `${what}: none of its rooms`)
      await ns.to('secret').emit('update', { room: 'secret', seq: 3, text: 'still secret' })
      await ns.emit('update', { room: '*', seq: 4, text: 'to everyone' })
      t.same(await seqsUntil(t, other.client, 4), [4], `${what}: nothing of the old session's rooms`)
      await other.client.close()
    }
    // None of the refused claims used the session up: its owner still gets it back, and what it missed.
    const back = await liveMember(t, app, 'ann', [], resumeQuery(ann.id, seen.pos))
    t.equal(back.recovered, true, 'the owner resumes after all of that')
    await ns.to('secret').emit('update', { room: 'secret', seq: 5, text: 'live' })
    const seqs = await seqsUntil(t, back.client, 5)
    t.same(seqs, [2, ...Array(claims.length).fill([3, 4]).flat(), 5], 'what it missed, once, in order, then live')
    assertClean()
  })
}

test('redis: after a Redis SIGKILL and restart the history is gone: recovered false, never a silent gap', async (t) => {
  const redis = await redisFor(t)
  const a = await redisApp(t, redis.url)
  const b = await redisApp(t, redis.url)
  const first = await liveMember(t, a, 'ann', ['r1'])
  await b.realtime.namespace('/live').to('r1').emit('update', { room: 'r1', seq: 1, text: 'seen' })
  const seen = await first.client.next()
  first.client.ws.terminate()
  await pollUntil(async () => (await redisKeys(redis.url, '*:s:*')).length > 0 && a.realtime.connectionCount === 0)
  const up = Promise.all([once(a.realtime, 'broker:up'), once(b.realtime, 'broker:up')])
  await redis.kill('SIGKILL')
  await redis.restart()
  await up
  await b.realtime.namespace('/live').to('r1').emit('update', { room: 'r1', seq: 2, text: 'after the restart' })
  const again = await liveMember(t, b, 'ann', [], resumeQuery(first.id, seen.pos))
  t.equal(again.recovered, false)
  // A fresh session works as any: joins, and its positions are of a new epoch.
  t.match(await again.client.request('join', { room: 'r1' }, 'j'), { type: 'reply', data: null })
  await a.realtime.namespace('/live').to('r1').emit('update', { room: 'r1', seq: 3, text: 'live' })
  const frame = await again.client.next()
  t.match(frame, { type: 'update', data: { seq: 3 } })
  t.not(frame.pos.split('-')[0], seen.pos.split('-')[0], 'a new epoch')
})

test('redis: the history lives on one slot with its channel, keeps maxEvents, and sessions expire after the window', async (t) => {
  const redis = await redisFor(t)
  const app = await redisApp(t, redis.url, { window: 1000, maxEvents: 100 })
  const ann = await liveMember(t, app, 'ann', ['r1'])
  await pushUpdates(app, 'r1', 1, 300, 100_000)
  t.same(await seqsUntil(t, ann.client, 300), range(1, 300))
  const keys = await redisKeys(redis.url, '*')
  const history = keys.filter((key) => key.startsWith('{fastify-realtime#/live#}'))
  t.same(history.map((key) => key.replace(/:s:.*/, ':s:<id>')).sort(), ['{fastify-realtime#/live#}:log', '{fastify-realtime#/live#}:meta', '{fastify-realtime#/live#}:s:<id>'])
  const client = await redisClient(t, redis.url)
  const length = await client.xlen('{fastify-realtime#/live#}:log')
  t.ok(length >= 100 && length < 300, `the stream keeps about maxEvents (${length})`)
  ann.client.ws.terminate()
  await pollUntil(async () => (await client.pttl(history.find((key) => key.includes(':s:'))!)) > 0)
  await pollUntil(async () => (await redisKeys(redis.url, '*:s:*')).length === 0, { timeout: 5000 })
  t.pass('the lost session expired after the window')
})

/** A RealtimeEmitter's /live namespace, told the route has recovery; closed at teardown. */
function recoveryEmitter (t: TestContext, url: string) {
  const emitter = new RealtimeEmitter({ redis: url })
  t.teardown(() => emitter.close())
  return emitter.namespace('/live', { recovery: { maxEvents: 2_000 } })
}

async function redisClient (t: TestContext, url: string): Promise<Redis> {
  const client = new Redis(url)
  t.teardown(() => client.quit())
  return client
}

async function redisKeys (url: string, pattern: string): Promise<string[]> {
  const client = new Redis(url)
  try {
    return await client.keys(pattern)
  } finally {
    await client.quit()
  }
}

test('redis: a RealtimeEmitter told the route has recovery appends to the history: live with a pos, and replayed on resume', async (t) => {
  const redis = await redisFor(t)
  const app = await redisApp(t, redis.url)
  const live = recoveryEmitter(t, redis.url)
  const ann = await liveMember(t, app, 'ann', ['r1'])
  await live.to('r1').emit('update', { room: 'r1', seq: 1, text: 'from a worker' })
  const seen = await ann.client.next()
  t.match(seen, { type: 'update', pos: /-1$/, data: { seq: 1 } })
  ann.client.ws.terminate()
  await live.to('r1').emit('update', { room: 'r1', seq: 2, text: 'missed' })
  await app.realtime.namespace('/live').to('r1').emit('update', { room: 'r1', seq: 3, text: 'missed too' })
  const back = await liveMember(t, app, 'ann', [], resumeQuery(ann.id, seen.pos))
  t.equal(back.recovered, true)
  await live.to('r1').emit('update', { room: 'r1', seq: 4, text: 'live' })
  t.same(await seqsUntil(t, back.client, 4), [2, 3, 4])
})

test('redis: an instance whose subscriber missed events closes its clients with 4002, and their resume fills the gap', async (t) => {
  const redis = await redisFor(t)
  const a = await redisApp(t, redis.url)
  const live = recoveryEmitter(t, redis.url)
  const ann = await liveMember(t, a, 'ann', ['r1'])
  await live.to('r1').emit('update', { room: 'r1', seq: 1, text: 'seen' })
  const seen = await ann.client.next()
  const admin = await redisClient(t, redis.url)
  const down = once(a.realtime, 'broker:down')
  await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
  await down
  // Published while A's subscriber is away: A never hears of these.
  for (let seq = 2; seq <= 11; seq++) await live.to('r1').emit('update', { room: 'r1', seq, text: 'missed by A' })
  await once(a.realtime, 'broker:up')
  await live.to('r1').emit('update', { room: 'r1', seq: 12, text: 'after the gap' })
  t.same(await ann.client.closed, { code: 4002, reason: 'missed events, resume' }, 'told, not left with a silent gap')
  const back = await liveMember(t, a, 'ann', [], resumeQuery(ann.id, seen.pos))
  t.equal(back.recovered, true)
  t.same(await seqsUntil(t, back.client, 12), range(2, 12), 'the resume fills the gap, once, in order')
})

test('a broadcast keeps starting with its type: the position goes after it, whatever the type name holds', async (t) => {
  const app = await memoryApp(t)
  const ann = await liveMember(t, app, 'ann', ['r1'])
  await app.realtime.namespace('/live').to('r1').emit('update', { room: 'r1', seq: 1, text: 'x' })
  t.match(await ann.client.nextRaw(), /^\{"type":"update","pos":"[0-9a-f]{16}-1","data":\{/)
  for (const type of ['a"b', 'back\\', 'both\\"', '","pos":"x']) {
    const frame = withPosition(encodeEvent(type, { n: 1 }), '0123456789abcdef-7')
    t.same(JSON.parse(frame), { type, pos: '0123456789abcdef-7', data: { n: 1 } }, JSON.stringify(type))
  }
  t.equal(withPosition(encodeEvent('bare', undefined), 'p'), '{"type":"bare","pos":"p"}')
})

test('a client that gives up before its resume is answered keeps its claim: the next attempt resumes; onClose only follows an onOpen', async (t) => {
  const opens: string[] = []
  const closes: string[] = []
  const app = await build(t, (app) => {
    app.ws({
      ...liveRoute({ window: 10_000 }),
      onOpen: (conn) => { opens.push(conn.id) },
      onClose: (conn) => { closes.push(conn.id) }
    })
  }, { realtime: { redis: (await redisFor(t)).url, publishTimeout: 1000 } })
  const ann = await liveMember(t, app, 'ann', ['r1'])
  await app.realtime.namespace('/live').to('r1').emit('update', { room: 'r1', seq: 1, text: 'seen' })
  const seen = await ann.client.next()
  ann.client.ws.terminate()
  await app.realtime.namespace('/live').to('r1').emit('update', { room: 'r1', seq: 2, text: 'missed' })
  // A resume whose client drops the TCP connection at once, before the session frame can come.
  const hasty = new WebSocket(wsUrl(app, `/live?user=ann${resumeQuery(ann.id, seen.pos)}`))
  hasty.on('error', () => {})
  await once(hasty, 'open')
  hasty.terminate()
  await pollUntil(() => app.realtime.connectionCount === 0)
  const back = await liveMember(t, app, 'ann', [], resumeQuery(ann.id, seen.pos))
  t.equal(back.recovered, true, 'the claim still works')
  await app.realtime.namespace('/live').to('r1').emit('update', { room: 'r1', seq: 3, text: 'live' })
  t.same(await seqsUntil(t, back.client, 3), [2, 3])
  await back.client.close()
  await pollUntil(() => closes.length === opens.length && opens.length >= 2)
  t.same(closes.sort(), opens.sort(), 'every onClose answers an onOpen')
})
