// Peer: fastify-realtime, in memory or with Redis (REDIS_URL): a typed,
// validated echo handler with a reply, rooms, and emits from the server.
import Fastify from 'fastify'
import { Type } from 'typebox'
import realtime from '../../dist/lib/index.js'

export const protocol = 'envelope'

const PAYLOAD = Type.Object({ seq: Type.Integer(), text: Type.String({ maxLength: 200 }) })

export async function start ({ redisUrl } = {}) {
  const app = Fastify({ logger: false })
  await app.register(realtime, redisUrl === undefined ? {} : { redis: redisUrl })
  const bench = app.ws('/bench', {
    messages: {
      echo: { data: PAYLOAD, reply: PAYLOAD, handler: (_conn, data) => data },
      join: {
        data: Type.Object({ room: Type.String({ maxLength: 64 }) }),
        handler: async (conn, { room }) => { await conn.join(room) }
      }
    },
    events: { tick: Type.Object({ seq: Type.Integer(), t: Type.Number(), text: Type.String() }) }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return {
    port: app.server.address().port,
    path: '/bench',
    broadcast: (room, type, data) => { bench.to(room).emit(type, data).catch(() => {}) },
    close: () => app.close()
  }
}
