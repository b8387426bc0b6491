import { test } from 'tap'
import { Type } from 'typebox'
import type { FastifyInstance } from 'fastify'
import { chatEvents, chatRoute } from './fixtures/chat-route.js'
import { build, httpUrl, type TestClient, member, waitUntil } from './helper.js'

async function chatApp (t: Parameters<typeof build>[0]): Promise<FastifyInstance> {
  return build(t, (app) => {
    app.ws(chatRoute)
    app.ws('/notifications', {
      messages: { join: { data: Type.Object({ room: Type.String() }), handler: (conn, { room }) => conn.join(room) } },
      events: { said: chatEvents.said }
    })
    app.post('/rooms/:room', async (request, reply) => {
      const { room } = request.params as { room: string }
      await app.realtime.namespace('/chat').to(room).emit('said', { room, text: (request.body as { text: string }).text, from: 'server' })
      return reply.code(202).send()
    })
  })
}

/** Sends a sentinel to the whole namespace; resolves once `client` has it, with what came before it. */
async function framesBefore (app: FastifyInstance, client: TestClient, path = '/chat'): Promise<any[]> {
  const sentinel = `sentinel-${Math.random()}`
  await app.realtime.namespace(path).emit('said', { room: '', text: sentinel, from: 'test' })
  const frames: any[] = []
  for (;;) {
    const frame = await client.next()
    if (frame.data?.text === sentinel) return frames
    // Sentinels sent for other clients reach this one too: they are not what the test looks for.
    if (!String(frame.data?.text).startsWith('sentinel-')) frames.push(frame)
  }
}

test('a room message reaches the other members only, once each', async (t) => {
  const app = await chatApp(t)
  const alice = await member(t, app, 'alice', ['lobby'])
  const bob = await member(t, app, 'bob', ['lobby'])
  const carol = await member(t, app, 'carol', ['lobby', 'other'])
  const dave = await member(t, app, 'dave', ['other'])
  t.match(await alice.request('say', { room: 'lobby', text: 'hi' }), { type: 'reply', data: { at: Number } })
  const expected = { type: 'said', data: { room: 'lobby', text: 'hi', from: 'alice' } }
  t.same(await framesBefore(app, bob), [expected])
  t.same(await framesBefore(app, carol), [expected])
  t.same(await framesBefore(app, dave), [], 'another room hears nothing')
  t.same(await framesBefore(app, alice), [], 'the sender is excepted')
})

test('to() several rooms delivers once to a member of both; except() leaves out connections', async (t) => {
  const app = await chatApp(t)
  const both = await member(t, app, 'both', ['a', 'b'])
  const onlyA = await member(t, app, 'onlya', ['a'])
  const onlyB = await member(t, app, 'onlyb', ['b'])
  const chat = app.realtime.namespace('/chat')
  await chat.to(['a', 'b']).emit('said', { room: 'a+b', text: 'x', from: 'server' })
  const frame = { type: 'said', data: { room: 'a+b', text: 'x', from: 'server' } }
  t.same(await framesBefore(app, both), [frame])
  t.same(await framesBefore(app, onlyA), [frame])
  t.same(await framesBefore(app, onlyB), [frame])
  const [onlyAId] = chat.roomMembers('a').filter((conn) => conn.user !== undefined && (conn.user as { id: string }).id === 'onlya').map((conn) => conn.id)
  await chat.to('a').to('b').except(onlyAId!).emit('said', { room: 'a+b', text: 'y', from: 'server' })
  t.same(await framesBefore(app, onlyA), [], 'excepted by id')
  t.equal((await framesBefore(app, both)).length, 1)
  t.same((await framesBefore(app, onlyB)).map((f) => f.data.text), ['y'])
  await chat.except(chat.roomMembers('b')).emit('said', { room: '*', text: 'z', from: 'server' })
  t.same((await framesBefore(app, onlyA)).map((f) => f.data.text), ['z'])
  t.same(await framesBefore(app, onlyB), [], 'excepted by connection')
})

test('broadcast from a connection reaches the namespace but the sender', async (t) => {
  const app = await chatApp(t)
  const alice = await member(t, app, 'alice', [])
  const bob = await member(t, app, 'bob', [])
  alice.send({ type: 'shout', data: { text: 'hey' } })
  t.same(await bob.next(), { type: 'said', data: { room: '*', text: 'hey', from: 'shout' } })
  t.same(await framesBefore(app, alice), [])
})

test('namespaces are isolated: an emit on /chat never reaches /notifications', async (t) => {
  const app = await chatApp(t)
  const chatter = await member(t, app, 'alice', ['news'])
  const listener = await member(t, app, 'bob', ['news'], '/notifications')
  await app.realtime.namespace('/chat').to('news').emit('said', { room: 'news', text: 'chat only', from: 'server' })
  await app.realtime.namespace('/chat').emit('said', { room: '*', text: 'chat wide', from: 'server' })
  t.same((await framesBefore(app, chatter)).map((f) => f.data.text), ['chat only', 'chat wide'])
  t.same(await framesBefore(app, listener, '/notifications'), [], 'nothing crossed namespaces')
  t.throws(() => app.realtime.namespace('/nope'), { code: 'FST_RT_UNKNOWN_NAMESPACE' })
})

test('a push from a REST handler reaches exactly the connections in the room', async (t) => {
  const app = await chatApp(t)
  const inRoom = [await member(t, app, 'a', ['ops']), await member(t, app, 'b', ['ops'])]
  const outside = await member(t, app, 'c', ['dev'])
  const response = await fetch(httpUrl(app, '/rooms/ops'), {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'deploy' })
  })
  t.equal(response.status, 202)
  const frame = { type: 'said', data: { room: 'ops', text: 'deploy', from: 'server' } }
  for (const client of inRoom) t.same(await framesBefore(app, client), [frame])
  t.same(await framesBefore(app, outside), [])
})

test('join, leave and local counts; closing removes every membership', async (t) => {
  const app = await chatApp(t)
  const chat = app.realtime.namespace('/chat')
  const alice = await member(t, app, 'alice', ['a', 'b'])
  t.same((await alice.request('rooms', null)).data.sort(), ['a', 'b', 'user:alice'])
  t.equal(chat.size, 1)
  t.equal(chat.roomSize('a'), 1)
  await alice.request('leave', { room: 'a' })
  await alice.request('leave', { room: 'never-joined' })
  t.same(chat.roomNames().sort(), ['b', 'user:alice'])
  await alice.close()
  await waitUntil(() => chat.size === 0)
  t.same(chat.roomNames(), [])
})

test('no leaked memberships after many connect/join/close cycles', async (t) => {
  const app = await chatApp(t)
  const chat = app.realtime.namespace('/chat')
  const notifications = app.realtime.namespace('/notifications')
  for (let round = 0; round < 20; round++) {
    const clients = await Promise.all(Array.from({ length: 25 }, async (_, i) => {
      const client = await member(t, app, `u${round}-${i}`, ['shared', `room-${i % 5}`, `own-${round}-${i}`])
      return client
    }))
    await Promise.all(clients.map((client, i) => i % 2 === 0 ? client.close() : (client.ws.terminate(), client.closed)))
  }
  await waitUntil(() => chat.size === 0)
  t.equal(chat.size, 0)
  t.same(chat.roomNames(), [], 'room index empty')
  t.equal(notifications.size, 0)
  t.same(app.realtime.userConnections('u0-0'), [], 'user index empty')
  t.equal(app.realtime.heartbeatTimers, 0, 'no heartbeat timer without connections')
})
