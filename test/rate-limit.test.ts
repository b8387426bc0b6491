import { test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { Type } from 'typebox'
import { build, connect, guardProcess } from './helper.js'

/*
 * maxViolations counts per budget: the route's budget and each message
 * type's budget keep their own run of consecutive refusals, and a message a
 * budget accepts ends that budget's run.
 */

test('a per-type budget: refusals interleaved with accepted messages of that type never close', async (t) => {
  const assertClean = guardProcess(t)
  const app = await build(t, (app) => {
    app.ws('/chat', {
      messages: {
        say: { rateLimit: { max: 1, interval: 200, maxViolations: 3 }, reply: Type.String(), handler: () => 'ok' }
      }
    })
  })
  const client = await connect(t, app, '/chat')
  for (let round = 0; round < 4; round++) {
    // Sent together: the budget (one message per 200 ms) takes the first and refuses the second.
    client.send({ type: 'say', id: `a${round}` })
    client.send({ type: 'say', id: `b${round}` })
    t.match(await client.next(), { type: 'reply', id: `a${round}` }, `round ${round}: accepted`)
    t.match(await client.next(), { type: 'error', id: `b${round}`, error: { code: 'RATE_LIMITED' } }, `round ${round}: refused`)
    // The budget is time-based: the wait is the refill itself, not synchronisation.
    await sleep(250)
  }
  t.match(await client.request('say', null, 'last'), { type: 'reply', id: 'last' }, '4 refusals, never 3 in a row: still open')
  assertClean()
})

test('a per-type budget under a generous route budget: its run of refusals closes with 1008', async (t) => {
  const app = await build(t, (app) => {
    app.ws('/chat', {
      rateLimit: { max: 1000 },
      messages: {
        say: { rateLimit: { max: 1, interval: 60_000, maxViolations: 3 }, reply: Type.String(), handler: () => 'ok' },
        other: { reply: Type.String(), handler: () => 'fine' }
      }
    })
  })
  const client = await connect(t, app, '/chat')
  t.match(await client.request('say', null, 's0'), { type: 'reply' })
  t.match(await client.request('say', null, 's1'), { type: 'error', id: 's1', error: { code: 'RATE_LIMITED' } })
  // Messages of another type, accepted by the route budget, do not end the run of 'say'.
  t.match(await client.request('other', null, 'o1'), { type: 'reply', data: 'fine' })
  t.match(await client.request('say', null, 's2'), { type: 'error', id: 's2', error: { code: 'RATE_LIMITED' } })
  t.match(await client.request('other', null, 'o2'), { type: 'reply', data: 'fine' })
  client.send({ type: 'say', id: 's3' })
  t.match(await client.next(), { type: 'error', id: 's3', error: { code: 'RATE_LIMITED' } }, 'the third refusal is answered')
  // A sentinel: a connection left open would answer it.
  client.send({ type: 'ping' })
  const outcome = await Promise.race([client.closed, client.next().catch(() => client.closed)])
  t.same(outcome, { code: 1008, reason: 'rate limit exceeded' }, 'then the connection closes')
})

test('the route budget counts its own run: refusals of a type budget neither add to it nor end it', async (t) => {
  const app = await build(t, (app) => {
    app.ws('/chat', {
      rateLimit: { max: 3, interval: 60_000, maxViolations: 2 },
      messages: {
        say: { rateLimit: { max: 1, interval: 60_000, maxViolations: 5 }, reply: Type.String(), handler: () => 'ok' }
      }
    })
  })
  const client = await connect(t, app, '/chat')
  t.match(await client.request('say', null, 1), { type: 'reply' })
  t.match(await client.request('say', null, 2), { type: 'error', id: 2, error: { code: 'RATE_LIMITED', message: "Too many 'say' messages" } })
  t.match(await client.request('say', null, 3), { type: 'error', id: 3, error: { code: 'RATE_LIMITED', message: "Too many 'say' messages" } })
  // The route budget is spent now (3 taken): its first refusal leaves the connection open.
  t.match(await client.request('say', null, 4), { type: 'error', id: 4, error: { code: 'RATE_LIMITED', message: 'Too many messages' } })
  client.send({ type: 'say', id: 5 })
  t.match(await client.next(), { type: 'error', id: 5, error: { message: 'Too many messages' } })
  t.same(await client.closed, { code: 1008, reason: 'rate limit exceeded' }, 'two route refusals in a row close it')
})
