import { defineRoute, RealtimeError } from 'fastify-realtime'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the chat route's auth hook. */
    user: { id: string }
  }
}

const ROOM = Type.String({ minLength: 1, maxLength: 64 })

/** `demo-<user>`: the only token the example accepts. */
const TOKEN = /^demo-([A-Za-z0-9-]+)$/

/** Reads the token from `?token=` or `Authorization: Bearer`. */
function tokenOf (request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (header?.startsWith('Bearer ') === true) return header.slice(7)
  const query = request.query as { token?: unknown }
  return typeof query.token === 'string' ? query.token : undefined
}

/** Refuses the upgrade with 401 unless the token is `demo-<user>`. */
export async function authenticate (request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const user = TOKEN.exec(tokenOf(request) ?? '')?.[1]
  if (user === undefined) {
    await reply.code(401).send({ statusCode: 401, error: 'Unauthorized', message: 'A token demo-<user> is required' })
    return
  }
  request.user = { id: user }
}

/** The chat: rooms, a typed request with a reply, events to the room's other members. */
export const chat = defineRoute({
  path: '/chat',
  preValidation: authenticate,
  // Who is in each room, on every instance: GET /rooms/:room/presence.
  presence: true,
  messages: {
    join: {
      data: Type.Object({ room: ROOM }),
      handler: async (conn, { room }) => {
        // Personal rooms carry private notifications: only their owner is in them.
        if (room.startsWith('user:')) throw new RealtimeError('FORBIDDEN', 'user: rooms cannot be joined')
        await conn.join(room)
      }
    },
    leave: {
      data: Type.Object({ room: ROOM }),
      handler: (conn, { room }) => {
        if (!room.startsWith('user:')) conn.leave(room)
      }
    },
    say: {
      data: Type.Object({ room: ROOM, text: Type.String({ minLength: 1, maxLength: 2000 }) }),
      reply: Type.Object({ at: Type.Number() }),
      handler: (conn, { room, text }) => {
        conn.to(room).emit('said', { room, text, from: conn.user.id })
        return { at: Date.now() }
      }
    }
  },
  events: {
    said: Type.Object({ room: Type.String(), text: Type.String(), from: Type.String() }),
    notification: Type.Object({ text: Type.String() })
  },
  onOpen: (conn) => conn.join(`user:${conn.user.id}`)
})
