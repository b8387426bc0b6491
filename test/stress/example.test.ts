import { Parser } from '@asyncapi/parser'
import { test } from 'tap'
import WebSocket from 'ws'
import { refusedStatus, TestClient, type TestContext } from '../helper.js'
import { startExample, type ExampleServer } from '../support/example-server.js'
import { redisFor } from '../support/redis.js'

/*
 * The example as pinned in the README and issue: started the way `npm start`
 * starts it, spoken to only through HTTP and the documented protocol.
 */

async function open (t: TestContext, server: ExampleServer, path: string, headers?: Record<string, string>): Promise<TestClient> {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}${path}`, { headers })
  const client = new TestClient(ws)
  t.teardown(() => { ws.terminate() })
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('unexpected-response', (_req, res) => reject(new Error(String(res.statusCode))))
  })
  return client
}

async function refusal (server: ExampleServer, path: string, headers?: Record<string, string>): Promise<number> {
  return refusedStatus(new WebSocket(`ws://127.0.0.1:${server.port}${path}`, { headers }))
}

async function post (server: ExampleServer, path: string, body: unknown): Promise<Response> {
  return fetch(`http://127.0.0.1:${server.port}${path}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body)
  })
}

test('the example, as npm start runs it', async (t) => {
  const server = await startExample()
  t.teardown(() => server.stop())
  const base = `http://127.0.0.1:${server.port}`

  t.test('GET /health and GET /', async (t) => {
    const health = await fetch(`${base}/health`)
    t.equal(health.status, 200)
    const page = await fetch(`${base}/`)
    t.equal(page.status, 200)
    t.match(page.headers.get('content-type'), /text\/html/)
    t.match(await page.text(), /new WebSocket\(/)
  })

  t.test('/chat refuses anything but demo-<user> with 401 before the upgrade', async (t) => {
    t.equal(await refusal(server, '/chat'), 401)
    t.equal(await refusal(server, '/chat?token=demo-'), 401)
    t.equal(await refusal(server, '/chat?token=demo-bad_name'), 401)
    t.equal(await refusal(server, '/chat?token=other-alice'), 401)
    t.equal(await refusal(server, '/chat', { authorization: 'Bearer nope' }), 401)
    const byHeader = await open(t, server, '/chat', { authorization: 'Bearer demo-Header-User-1' })
    t.same((await byHeader.request('join', { room: 'h' })).type, 'reply')
  })

  t.test('join, say with reply {at}, said to the other members, leave', async (t) => {
    const alice = await open(t, server, '/chat?token=demo-alice')
    const bob = await open(t, server, '/chat?token=demo-bob')
    t.same(await alice.request('join', { room: 'lobby' }, 'j1'), { type: 'reply', id: 'j1', data: null })
    await bob.request('join', { room: 'lobby' })
    const answer = await alice.request('say', { room: 'lobby', text: 'hello' }, 's1')
    t.match(answer, { type: 'reply', id: 's1', data: { at: Number } })
    t.same(await bob.next(), { type: 'said', data: { room: 'lobby', text: 'hello', from: 'alice' } })
    await bob.request('leave', { room: 'lobby' })
    await alice.request('say', { room: 'lobby', text: 'gone?' })
    // Sentinel: bob's next frame is the answer to his own ping, not the message he left.
    bob.send({ type: 'ping' })
    t.same(await bob.next(), { type: 'pong' })
    t.match(await alice.request('say', { room: 'lobby', text: 'x'.repeat(2001) }), { type: 'error', error: { code: 'VALIDATION_FAILED' } })
    t.match(await alice.request('join', { room: 'user:bob' }), { type: 'error', error: { code: 'FORBIDDEN' } })
  })

  t.test('POST /notify/:user reaches every connection of that user, and only them', async (t) => {
    const phone = await open(t, server, '/chat?token=demo-carol')
    const laptop = await open(t, server, '/chat', { authorization: 'Bearer demo-carol' })
    const other = await open(t, server, '/chat?token=demo-dan')
    const response = await post(server, '/notify/carol', { text: 'your order shipped' })
    t.equal(response.status, 202)
    for (const client of [phone, laptop]) {
      t.same(await client.next(), { type: 'notification', data: { text: 'your order shipped' } })
    }
    other.send({ type: 'ping' })
    t.same(await other.next(), { type: 'pong' }, 'nothing for another user')
    t.equal((await post(server, '/notify/carol', { nope: 1 })).status, 400)
  })

  t.test('POST /rooms/:room/messages sends said from server to the room', async (t) => {
    const member = await open(t, server, '/chat?token=demo-erin')
    await member.request('join', { room: 'news' })
    const response = await post(server, '/rooms/news/messages', { text: 'breaking' })
    t.equal(response.status, 202)
    t.same(await member.next(), { type: 'said', data: { room: 'news', text: 'breaking', from: 'server' } })
  })

  t.test('/echo is raw', async (t) => {
    const echo = await open(t, server, '/echo')
    echo.ws.send('ping')
    t.equal(await echo.nextRaw(), 'pong')
    echo.ws.send('hello there')
    t.equal(await echo.nextRaw(), 'Server received: hello there')
  })

  t.test('WS /live: the session frame, updates with seq and pos from POST /live/:room, and a resume that misses nothing', async (t) => {
    t.equal(await refusal(server, '/live'), 401)
    const client = await open(t, server, '/live?token=demo-gina')
    const session = await client.next()
    t.match(session, { type: 'session', data: { id: /^[A-Za-z0-9_-]{22}$/, recovered: false } })
    t.same(await client.request('join', { room: 'game' }, 'j1'), { type: 'reply', id: 'j1', data: null })
    const first = await post(server, '/live/game', { text: 'kick-off' })
    t.equal(first.status, 202)
    const update = await client.next()
    t.match(update, { type: 'update', pos: /./, data: { room: 'game', seq: 1, text: 'kick-off' } })
    client.ws.terminate()
    for (const text of ['goal', 'corner', 'goal again']) t.equal((await post(server, '/live/game', { text })).status, 202)
    t.equal((await post(server, '/live/game', { nope: 1 })).status, 400)
    const back = await open(t, server, `/live?token=demo-gina&resume=${session.data.id}&pos=${encodeURIComponent(update.pos)}`)
    t.match(await back.next(), { type: 'session', data: { recovered: true } })
    const missed = [await back.next(), await back.next(), await back.next()]
    t.same(missed.map((frame) => [frame.data.seq, frame.data.text]), [[2, 'goal'], [3, 'corner'], [4, 'goal again']])
    t.equal((await post(server, '/live/other', { text: 'elsewhere' })).status, 202)
    t.equal((await post(server, '/live/game', { text: 'final whistle' })).status, 202)
    t.match(await back.next(), { type: 'update', data: { room: 'game', seq: 5, text: 'final whistle' } })
    const stranger = await open(t, server, `/live?token=demo-hank&resume=${session.data.id}`)
    t.match(await stranger.next(), { type: 'session', data: { recovered: false } }, "another user's session id is refused")
  })

  t.test('GET /asyncapi.json describes /chat, /live and the raw /echo; the official parser finds no error or warning', async (t) => {
    const response = await fetch(`${base}/asyncapi.json`)
    t.equal(response.status, 200)
    const text = await response.text()
    const { diagnostics } = await new Parser().parse(text)
    t.same(diagnostics.filter((d) => d.severity <= 1).map((d) => `${d.code}: ${d.message}`), [])
    const document = JSON.parse(text)
    t.equal(document.info.title, 'fastify-realtime example')
    t.same(Object.values(document.channels).map((channel: any) => channel.address), ['/chat', '/live', '/echo'])
    t.same(document.channels.echo.messages, {}, 'the raw route has no typed messages')
    const names = Object.values(document.channels.chat.messages).map((message: any) => message.name).filter(Boolean).sort()
    t.same(names, ['join', 'join.reply', 'leave', 'leave.reply', 'notification', 'said', 'say', 'say.reply'])
    t.same(document.channels.chat.messages['say.reply'].payload.properties.data,
      { type: 'object', required: ['at'], properties: { at: { type: 'number' } } })
    t.same(document.operations['chat.send.say'].reply.messages[0], { $ref: '#/channels/chat/messages/say.reply' })
  })

  t.test('SIGTERM closes clients with 1001 and exits 0', async (t) => {
    const client = await open(t, server, '/chat?token=demo-frank')
    const code = await server.stop()
    t.equal((await client.closed).code, 1001)
    t.equal(code, 0)
  })
})

test('two instances of the example share rooms, pushes and presence through Redis', async (t) => {
  const redis = await redisFor(t)
  const one = await startExample({ REDIS_URL: redis.url })
  t.teardown(() => one.stop())
  const two = await startExample({ REDIS_URL: redis.url })
  t.teardown(() => two.stop())
  const onOne = await open(t, one, '/chat?token=demo-alice')
  const onTwo = await open(t, two, '/chat?token=demo-alice')
  const bob = await open(t, two, '/chat?token=demo-bob')
  for (const response of [await post(one, '/notify/alice', { text: 'via one' }), await post(two, '/notify/alice', { text: 'via two' })]) {
    t.equal(response.status, 202)
  }
  for (const client of [onOne, onTwo]) {
    t.same(await client.next(), { type: 'notification', data: { text: 'via one' } })
    t.same(await client.next(), { type: 'notification', data: { text: 'via two' } })
  }
  await onOne.request('join', { room: 'shared' })
  await bob.request('join', { room: 'shared' })
  await onOne.request('say', { room: 'shared', text: 'across instances' })
  t.same(await bob.next(), { type: 'said', data: { room: 'shared', text: 'across instances', from: 'alice' } })
  t.equal((await post(one, '/rooms/shared/messages', { text: 'rest on one' })).status, 202)
  t.same(await bob.next(), { type: 'said', data: { room: 'shared', text: 'rest on one', from: 'server' } })
  const presence = await (await fetch(`http://127.0.0.1:${two.port}/rooms/shared/presence`)).json() as { count: number, members: Array<{ userId: string }> }
  t.equal(presence.count, 2)
  t.same(presence.members.map((member) => member.userId).sort(), ['alice', 'bob'])
})
