// (c) The README's quick start, as a user would paste it.
import Fastify from 'fastify'
import realtime from 'fastify-realtime'
import { Type } from 'typebox'

interface User { id: string, name: string }
declare module 'fastify' {
  interface FastifyRequest { user?: User }
}
declare function verifyToken (token: string | undefined): Promise<User | undefined>

const app = Fastify({ logger: true })
await app.register(realtime, { heartbeat: { interval: 30_000, timeout: 10_000 } })

app.get('/health', async () => ({ ok: true }))

app.ws<{ Querystring: { token?: string } }>('/chat', {
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
        conn.to(room).emit('said', { room, text, from: conn.user!.id })
        return { at: Date.now() }
      }
    }
  },
  events: { said: Type.Object({ room: Type.String(), text: Type.String(), from: Type.String() }) },
  onOpen: (conn) => conn.join(`user:${conn.user!.id}`),
  onClose: (_conn, _code, _reason) => {}
})

app.post<{ Params: { user: string } }>('/notify/:user', async (request) => {
  await app.realtime.namespace('/chat').to(`user:${request.params.user}`).emit('said', { room: 'dm', text: 'hi', from: 'server' })
  return { ok: true }
})

await app.listen({ port: 3000 })
