import { Type } from 'typebox'
import { defineRoute, RealtimeError } from '../../lib/index.js'

/*
 * The route the client tests talk to, declared as a value so that the
 * client is typed from it (`connect<typeof lab>`) as an app's would be.
 */

/** Requests of `hang` wait here until the test lets them go. */
export const hanging = new Set<() => void>()

/** Tokens the route saw, one per accepted upgrade, in order. */
export const tokensSeen: string[] = []

/** The text of every `say` the route handled, in order. */
export const saysHandled: string[] = []

const ROOM = Type.Object({ room: Type.String({ minLength: 1, maxLength: 64 }) })

export const lab = defineRoute({
  path: '/lab',
  preValidation: async (request, reply) => {
    const query = request.query as { token?: string, access_token?: string }
    const token = query.token ?? query.access_token
    // `status-<code>`: the upgrade is refused with that HTTP status.
    const status = /^status-(\d{3})$/.exec(token ?? '')?.[1]
    if (status !== undefined) {
      await reply.code(Number(status)).send({ statusCode: Number(status), error: 'Refused', message: `refused with ${status}` })
      return
    }
    if (token === undefined || !token.startsWith('ok-')) {
      await reply.code(401).send({ statusCode: 401, error: 'Unauthorized', message: 'token ok-<n> required' })
      return
    }
    tokensSeen.push(token)
  },
  heartbeat: false,
  // A route chooses a subprotocol only among the ones it declares.
  protocols: ['realtime.v1'],
  messages: {
    join: {
      data: ROOM,
      handler: async (conn, { room }) => {
        if (room === 'secret') throw new RealtimeError('FORBIDDEN', 'not this room')
        await conn.join(room)
      }
    },
    leave: { data: ROOM, handler: (conn, { room }) => { conn.leave(room) } },
    say: {
      data: Type.Object({ room: Type.String(), text: Type.String() }),
      reply: Type.Object({ at: Type.Number() }),
      handler: (conn, { room, text }) => {
        saysHandled.push(text)
        conn.to(room).emit('said', { room, text })
        return { at: Date.now() }
      }
    },
    hang: {
      reply: Type.Literal('released'),
      handler: async () => {
        await new Promise<void>((resolve) => hanging.add(resolve))
        return 'released' as const
      }
    },
    bye: {
      data: Type.Object({ code: Type.Integer(), reason: Type.String() }),
      handler: (conn, { code, reason }) => { conn.close(code, reason) }
    }
  },
  events: {
    said: Type.Object({ room: Type.String(), text: Type.String() })
  }
})

/** Lets every waiting `hang` request answer. */
export function releaseHanging (): void {
  for (const release of hanging) release()
  hanging.clear()
}
