import Fastify, { type FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import realtime, { type RealtimeOptions } from '../../lib/index.js'
import type { TestContext } from '../helper.js'

export const chatEvents = {
  said: Type.Object({ room: Type.String(), text: Type.String(), from: Type.String() }),
  seq: Type.Number()
}

/**
 * One instance of a small chat app on Redis: `?user=` names the user,
 * every connection is in `user:<user>`, messages join/leave/say.
 */
export async function chatInstance (t: TestContext, redis: RealtimeOptions['redis'], options: RealtimeOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(realtime, { redis, publishTimeout: 500, redisReadyTimeout: 2000, ...options })
  app.ws('/chat', {
    preValidation: async (request) => {
      (request as { user?: unknown }).user = { id: (request.query as { user?: string }).user ?? 'anonymous' }
    },
    messages: {
      join: { data: Type.Object({ room: Type.String() }), handler: (conn, { room }) => conn.join(room) },
      leave: { data: Type.Object({ room: Type.String() }), handler: (conn, { room }) => { conn.leave(room) } },
      say: {
        data: Type.Object({ room: Type.String(), text: Type.String() }),
        handler: (conn, { room, text }) => conn.to(room).emit('said', { room, text, from: conn.userId ?? '' })
      },
      id: { reply: Type.String(), handler: (conn) => conn.id }
    },
    events: chatEvents,
    onOpen: (conn) => conn.join(`user:${conn.userId ?? ''}`)
  })
  app.ws('/other', { events: chatEvents, onOpen: (conn) => conn.join('shared') })
  app.ws('/presence', {
    presence: { events: true },
    preValidation: async (request) => {
      (request as { user?: unknown }).user = { id: (request.query as { user?: string }).user ?? 'anonymous' }
    },
    messages: {
      join: { data: Type.Object({ room: Type.String() }), handler: (conn, { room }) => conn.join(room) },
      leave: { data: Type.Object({ room: Type.String() }), handler: (conn, { room }) => { conn.leave(room) } }
    }
  })
  app.post('/push/:room', async (request, reply) => {
    const { room } = request.params as { room: string }
    await app.realtime.namespace('/chat').to(room).emit('said', { room, text: (request.body as { text: string }).text, from: 'rest' })
    return reply.code(202).send()
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return app
}
