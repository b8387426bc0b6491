import Fastify, { type FastifyInstance } from 'fastify'
import realtime, { type RealtimeOptions } from '../../lib/index.js'
import { chatEvents, chatRoute, presenceRoute } from '../fixtures/chat-route.js'
import type { TestContext } from '../helper.js'

/**
 * One instance of a small chat app on Redis: the fixture's /chat and
 * /presence routes, /other, and POST /push/:room.
 */
export async function chatInstance (t: TestContext, redis: RealtimeOptions['redis'], options: RealtimeOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(realtime, { redis, publishTimeout: 500, redisReadyTimeout: 2000, ...options })
  app.ws(chatRoute)
  app.ws('/other', { events: chatEvents, onOpen: (conn) => conn.join('shared') })
  app.ws(presenceRoute)
  app.post('/push/:room', async (request, reply) => {
    const { room } = request.params as { room: string }
    await app.realtime.namespace('/chat').to(room).emit('said', { room, text: (request.body as { text: string }).text, from: 'rest' })
    return reply.code(202).send()
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return app
}
