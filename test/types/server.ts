/*
 * Type tests: this file must compile (`npm run typecheck`), and every line
 * marked @ts-expect-error must fail to. Nothing here runs.
 */
import Fastify from 'fastify'
import { Type } from 'typebox'
import realtime, { defineRoute, type Connection, type Namespace } from '../../lib/index.js'

const app = Fastify()
await app.register(realtime, { heartbeat: { interval: 30_000, timeout: 10_000 } })

const events = {
  said: Type.Object({ room: Type.String(), text: Type.String(), from: Type.String() }),
  count: Type.Number()
}

const chat = app.ws('/chat', {
  preValidation: async (_request, reply) => { await reply.code(401).send() },
  messages: {
    join: {
      data: Type.Object({ room: Type.String({ maxLength: 64 }) }),
      handler: async (conn, { room }) => {
        const name: string = room
        await conn.join(name)
      }
    },
    say: {
      data: Type.Object({ room: Type.String(), text: Type.String() }),
      reply: Type.Object({ at: Type.Number() }),
      handler: async (conn, { room, text }) => {
        await conn.to(room).emit('said', { room, text, from: conn.id })
        conn.emit('count', 1)
        // @ts-expect-error data is typed from its schema
        const wrong: number = text
        conn.emit('count', wrong)
        return { at: Date.now() }
      }
    },
    untyped: {
      handler: (_conn, data) => {
        // @ts-expect-error data without a schema is unknown
        data.anything()
      }
    },
    // @ts-expect-error the reply must match the reply schema
    badReply: { reply: Type.Object({ at: Type.Number() }), handler: () => ({ at: 'now' }) },
    // @ts-expect-error a reply schema requires a returned value
    noReply: { reply: Type.Number(), handler: () => {} },
    // @ts-expect-error handler data destructures a property the schema lacks
    badData: { data: Type.Object({ a: Type.String() }), handler: (_conn, { b }) => { console.log(b) } }
  },
  events,
  onOpen: (conn) => {
    // @ts-expect-error unknown event name
    conn.emit('nope', {})
    // @ts-expect-error wrong payload
    conn.emit('said', { room: 'r' })
    // @ts-expect-error wrong payload type
    conn.to('r').emit('count', 'one')
  },
  onClose: (conn, code, reason) => {
    const c: number = code
    const r: string = reason
    console.log(conn.rooms.size, c, r)
  }
})

// app.ws returns the typed namespace.
const typed: Namespace<typeof events> = chat
await typed.to('room').except('id').emit('said', { room: 'r', text: 't', from: 'f' })
await typed.emit('count', 3)
// @ts-expect-error unknown event on the namespace
await typed.emit('nope', 1)
// @ts-expect-error wrong payload on the namespace
await typed.to(['a', 'b']).emit('said', { room: 1 })

// A route declared as a value types app.realtime.namespace(route).
const notifications = defineRoute({
  path: '/notifications',
  events: { notification: Type.Object({ text: Type.String() }) },
  onOpen: (conn) => { conn.emit('notification', { text: 'welcome' }) }
})
app.ws(notifications)
await app.realtime.namespace(notifications).emit('notification', { text: 'x' })
// @ts-expect-error payload typed from the route's events
await app.realtime.namespace(notifications).emit('notification', { text: 1 })

// A namespace looked up by an undeclared path accepts any event with unknown data.
await app.realtime.namespace('/undeclared').emit('anything', { at: 1 })

// Raw routes get Buffers.
app.ws('/echo', {
  raw: true,
  onMessage (conn, data, isBinary) {
    const buffer: Buffer = data
    const binary: boolean = isBinary
    conn.send(binary ? buffer : buffer.toString())
  }
})
// @ts-expect-error a raw route needs onMessage
app.ws('/raw-missing', { raw: true })

// Connection API
declare const conn: Connection
const rooms: ReadonlySet<string> = conn.rooms
const joined: Promise<void> = conn.join(['a', 'b'])
conn.leave('a')
conn.close(4000, 'bye')
console.log(rooms, joined, conn.id, conn.userId, conn.request?.headers, conn.query, conn.ip, conn.bufferedAmount)

// @ts-expect-error unknown plugin option
await app.register(realtime, { maxPayloads: 1 })

// A path declared in RealtimeNamespaces is typed.
await app.realtime.namespace('/typed-by-path').emit('notification', { text: 'typed' })
// @ts-expect-error '/typed-by-path' has no such event
await app.realtime.namespace('/typed-by-path').emit('anything', { at: 1 })
// @ts-expect-error '/typed-by-path' types the payload
await app.realtime.namespace('/typed-by-path').emit('notification', { text: 1 })

declare module '../../lib/index.js' {
  interface RealtimeNamespaces {
    '/typed-by-path': { notification: ReturnType<typeof Type.Object<{ text: ReturnType<typeof Type.String> }>> }
  }
}
