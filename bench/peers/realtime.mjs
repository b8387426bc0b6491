// Peer: fastify-realtime, in memory or with Redis (REDIS_URL): a typed,
// validated echo handler with a reply, rooms, emits from the server, and a
// `publish` message whose handler emits to a room.
import Fastify from 'fastify'
import { Type } from 'typebox'
import realtime from '../../dist/lib/index.js'

export const protocol = 'envelope'

const PAYLOAD = Type.Object({ seq: Type.Integer(), text: Type.String({ maxLength: 200 }) })

export async function start ({ redisUrl, recovery } = {}) {
  // BENCH_LOG=<level> shows the server's logs (warnings: missed events, broker down) on stderr.
  const app = Fastify({ logger: process.env.BENCH_LOG === undefined ? false : { level: process.env.BENCH_LOG } })
  await app.register(realtime, redisUrl === undefined ? {} : { redis: redisUrl })
  const bench = app.ws('/bench', {
    ...(recovery === undefined ? {} : { recovery }),
    messages: {
      echo: { data: PAYLOAD, reply: PAYLOAD, handler: (_conn, data) => data },
      join: {
        data: Type.Object({ room: Type.String({ maxLength: 64 }) }),
        handler: async (conn, { room }) => { await conn.join(room) }
      },
      // A tick from a client, emitted to the room (the publisher is not a member).
      publish: {
        data: Type.Object({ room: Type.String({ maxLength: 64 }), seq: Type.Integer(), t: Type.Number(), text: Type.String({ maxLength: 200 }) }),
        handler: async (conn, { room, seq, t, text }) => { await conn.to(room).emit('tick', { seq, t, text }) }
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
