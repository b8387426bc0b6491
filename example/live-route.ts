import { defineRoute } from 'fastify-realtime'
import { Type } from 'typebox'
import { authenticate } from './chat-route.js'

const ROOM = Type.String({ minLength: 1, maxLength: 64 })

/**
 * Live updates with session recovery: a client that loses its connection
 * and comes back within two minutes (`?resume=<session id>&pos=<last pos>`)
 * is back in its rooms and gets every update it missed, in order, before
 * any new one; otherwise its session frame says `recovered: false`.
 */
export const live = defineRoute({
  path: '/live',
  preValidation: authenticate,
  recovery: true,
  messages: {
    join: {
      data: Type.Object({ room: ROOM }),
      reply: Type.Null(),
      handler: async (conn, { room }) => {
        await conn.join(room)
        return null
      }
    }
  },
  events: {
    update: Type.Object({ room: Type.String(), seq: Type.Integer(), text: Type.String() })
  }
})
