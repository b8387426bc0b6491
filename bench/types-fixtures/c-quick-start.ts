// (c) The README's quick start, as a user would paste it.
import Fastify from 'fastify'
import realtime from 'fastify-realtime'
import { Type } from 'typebox'

interface User { id: string, name: string }
declare function verifyToken (token: string): Promise<User | undefined>

declare module 'fastify' {
  interface FastifyRequest {
    user: User                                // set by the auth hook below; reachable as conn.user
  }
}

const app = Fastify({ logger: true })
await app.register(realtime, { heartbeat: { interval: 30_000, timeout: 10_000 } })

app.get('/health', async () => ({ ok: true }))

app.ws('/chat', {
  // Ordinary Fastify route options: they run before the upgrade.
  schema: { querystring: Type.Object({ token: Type.String() }) },   // types request.query and conn.query
  preValidation: async (request, reply) => {
    const user = await verifyToken(request.query.token)
    if (!user) return reply.code(401).send({ message: 'bad token' })
    request.user = user
  },
  messages: {
    join: {
      data: Type.Object({ room: Type.String({ maxLength: 64 }) }),
      handler: async (conn, { room }) => { await conn.join(room) }
    },
    say: {
      data: Type.Object({ room: Type.String(), text: Type.String({ maxLength: 2000 }) }),
      reply: Type.Object({ at: Type.Number() }),
      handler: (conn, { room, text }) => {
        conn.to(room).emit('said', { room, text, from: conn.user.id })   // everyone in the room but conn
        return { at: Date.now() }                                         // the reply
      }
    }
  },
  events: { said: Type.Object({ room: Type.String(), text: Type.String(), from: Type.String() }) },
  onOpen: (conn) => conn.join(`user:${conn.user.id}`),
  onClose: (conn, code, reason) => { app.log.info({ id: conn.id, code, reason }, 'closed') }
})

app.post<{ Params: { user: string } }>('/notify/:user', async (request) => {
  await app.realtime.namespace('/chat').to(`user:${request.params.user}`).emit('said', { room: 'dm', text: 'hi', from: 'server' })
  return { ok: true }
})

await app.listen({ port: 3000 })
