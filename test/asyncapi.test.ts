import { Parser } from '@asyncapi/parser'
import Fastify from 'fastify'
import { test } from 'tap'
import { Type } from 'typebox'
import realtime, { CloseCode, WireErrorCode, type AsyncApiDocument } from '../lib/index.js'
import { build, httpUrl } from './helper.js'

/*
 * The AsyncAPI 3.0 document built from the routes' own schemas, checked by
 * the official parser (errors and warnings both fail) and read back.
 */

/** Problems the official AsyncAPI parser finds (severity 0 error, 1 warning; 2 and 3 are hints). */
async function asyncapiProblems (document: unknown): Promise<string[]> {
  const { diagnostics } = await new Parser().parse(JSON.stringify(document))
  return diagnostics.filter((d) => d.severity <= 1).map((d) => `${d.code}: ${d.message} at ${d.path.join('/')}`)
}

const ROOM = Type.String({ minLength: 1, maxLength: 64 })

async function chatApp (t: Parameters<typeof build>[0], options = {}): Promise<Awaited<ReturnType<typeof build>>> {
  return build(t, async (app) => {
    app.ws('/chat', {
      presence: { events: true },
      schema: {
        querystring: Type.Object({ token: Type.String() }),
        headers: Type.Object({ 'x-client': Type.Optional(Type.String()) })
      },
      messages: {
        join: { data: Type.Object({ room: ROOM }), handler: () => {} },
        say: {
          data: Type.Object({ room: ROOM, text: Type.String({ maxLength: 2000 }) }),
          reply: Type.Object({ at: Type.Number() }),
          handler: () => ({ at: 1 })
        },
        'room:leave': { handler: () => {} }
      },
      events: { said: Type.Object({ room: Type.String(), text: Type.Readonly(Type.String()), from: Type.Optional(Type.String()) }) }
    })
    app.ws('/echo', { raw: true, onMessage () {} })
    await app.register(async (child) => {
      child.ws('/:room/feed', { messages: { ping2: { handler: () => {} } } })
    }, { prefix: '/rooms' })
  }, { realtime: options })
}

test('app.realtime.asyncapi() describes every route; the official parser finds no error or warning', async (t) => {
  const app = await chatApp(t)
  const document = app.realtime.asyncapi()
  t.same(await asyncapiProblems(document), [])
  t.equal(document.asyncapi, '3.0.0')
  t.same(Object.values(document.channels).map((channel) => channel.address), ['/chat', '/echo', '/rooms/{room}/feed'])
  t.same(document.channels.rooms_room_feed.parameters, { room: { description: 'Route parameter `room`' } })

  const chat = document.channels.chat
  t.same(chat.bindings.ws, {
    method: 'GET',
    query: { type: 'object', required: ['token'], properties: { token: { type: 'string' } } },
    headers: { type: 'object', properties: { 'x-client': { type: 'string' } } },
    bindingVersion: '0.1.0'
  }, "the upgrade's query and headers, from the route's Fastify schema")
  t.same(Object.values(chat.messages).filter((m: any) => m.name !== undefined).map((m: any) => m.name).sort(),
    ['join', 'join.reply', 'presence', 'room:leave', 'room:leave.reply', 'said', 'say', 'say.reply'])
  t.same(chat.messages.say.payload, {
    type: 'object',
    required: ['type', 'data'],
    properties: {
      type: { type: 'string', const: 'say' },
      data: {
        type: 'object',
        required: ['room', 'text'],
        properties: { room: { type: 'string', minLength: 1, maxLength: 64 }, text: { type: 'string', maxLength: 2000 } }
      },
      id: { $ref: '#/components/schemas/RequestId' }
    }
  }, 'the data schema inside the envelope, without TypeBox markers')
  t.notOk(JSON.stringify(chat.messages).includes('~'), 'no TypeBox key survives')

  const say = document.operations['chat.send.say']
  t.equal(say.action, 'send', 'written from the client: it sends messages')
  t.same(say.messages, [{ $ref: '#/channels/chat/messages/say' }])
  t.same(say.reply.messages, [{ $ref: '#/channels/chat/messages/say.reply' }, { $ref: '#/channels/chat/messages/error' }])
  t.same(chat.messages['say.reply'].payload.properties.data,
    { type: 'object', required: ['at'], properties: { at: { type: 'number' } } }, 'the reply schema')
  t.equal(document.operations['chat.send.room_leave'].messages[0].$ref, '#/channels/chat/messages/room_leave')
  t.equal(document.operations['chat.receive.said'].action, 'receive', 'events are received')
  t.ok(document.operations['chat.receive.presence'], 'presence events, with presence: { events: true }')

  t.same(document.channels.echo.messages, {}, 'a raw route has no typed messages')
  t.notOk(Object.values(document.operations).some((op: any) => op.channel.$ref === '#/channels/echo'))

  const error = document.components.schemas.ErrorFrame
  t.same(error.properties.error.properties.code.anyOf[0].enum, Object.values(WireErrorCode), 'the wire error codes')
  t.same(document['x-close-codes'].map((c) => c.code), Object.values(CloseCode))
  t.same(document['x-close-codes'].find((c) => c.code === 4403), { code: 4403, name: 'DISCONNECTED', reconnect: false })
  t.match(document.info.description, /\| 4001 \| SLOW_CONSUMER \| yes \|/)
})

test('each call returns a fresh copy', async (t) => {
  const app = await chatApp(t)
  const first: AsyncApiDocument = app.realtime.asyncapi()
  first.channels.chat.address = '/changed'
  t.equal(app.realtime.asyncapi().channels.chat.address, '/chat')
})

test('the asyncapi option serves the document as JSON at its path, with its info', async (t) => {
  const app = await chatApp(t, { asyncapi: { path: '/asyncapi.json', info: { title: 'Chat', version: '2.1.0', description: 'Our chat.' } } })
  const response = await fetch(httpUrl(app, '/asyncapi.json'))
  t.equal(response.status, 200)
  t.match(response.headers.get('content-type'), /^application\/json/)
  const served = await response.json() as AsyncApiDocument
  t.same(served, app.realtime.asyncapi())
  t.equal(served.info.title, 'Chat')
  t.equal(served.info.version, '2.1.0')
  t.match(served.info.description, /^Our chat\.\n\nEach WebSocket text frame/)
  t.same(await asyncapiProblems(served), [])
})

test('off by default: nothing is served; defaults for info', async (t) => {
  const app = await chatApp(t)
  t.equal((await fetch(httpUrl(app, '/asyncapi.json'))).status, 404)
  t.same({ title: app.realtime.asyncapi().info.title, version: app.realtime.asyncapi().info.version }, { title: 'WebSocket API', version: '1.0.0' })
})

test('the asyncapi option is checked at register', async (t) => {
  for (const asyncapi of [true, { path: 'asyncapi.json' }, { path: 3 }, { info: 'x' }, { info: { title: '' } }, { info: { version: 1 } }]) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(realtime, { asyncapi } as never).ready() }, { code: 'FST_RT_INVALID_OPTION', message: /'asyncapi/ },
      JSON.stringify(asyncapi))
    await app.close()
  }
})

test('a route with recovery: the session frame is a message, and events carry a pos', async (t) => {
  const app = await build(t, (app) => {
    app.ws('/live', { recovery: true, events: { update: Type.Object({ seq: Type.Integer() }) } })
    app.ws('/plain', { events: { update: Type.Object({ seq: Type.Integer() }) } })
  })
  const document = app.realtime.asyncapi() as any
  t.same(await asyncapiProblems(document), [])
  const session = document.channels.live.messages.session
  t.same(session.payload.properties.data.required, ['id', 'recovered'])
  t.equal(document.operations['live.receive.session'].action, 'receive')
  t.match(document.channels.live.messages['update.event'].payload.properties.pos, { type: 'string' })
  t.notOk(document.channels.plain.messages.session, 'not on a route without recovery')
  t.notOk(document.channels.plain.messages['update.event'].payload.properties.pos)
})
