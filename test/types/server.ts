/*
 * Type tests: this file must compile (`npm run typecheck`), and every line
 * marked @ts-expect-error must fail to. Nothing here runs.
 */
import Fastify from 'fastify'
import { Type } from 'typebox'
import realtime, { defineRoute, type Connection, type Namespace, type UserOf } from '../../lib/index.js'

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

// The route generic types the upgrade request in the hooks and onOpen, and conn.query / conn.params.
app.ws<{ Querystring: { token: string }, Params: { room: string } }>('/rooms/:room', {
  onRequest: (request, _reply, done) => {
    const token: string = request.query.token
    const room: string = request.params.room
    // @ts-expect-error the generic declares no `nope`
    console.log(request.query.nope, token, room)
    done()
  },
  preValidation: async (request) => {
    // @ts-expect-error `token` is a string
    const n: number = request.query.token
    console.log(n)
  },
  onOpen: (conn, request) => {
    const token: string = conn.query.token
    const room: string = conn.params.room
    const again: string = request.query.token
    // @ts-expect-error the generic declares no `other`
    console.log(conn.query.other, token, room, again)
  }
})

// A TypeBox schema types the same, and message handlers stay inferred.
app.ws('/by-schema/:room', {
  schema: {
    querystring: Type.Object({ token: Type.String(), limit: Type.Optional(Type.Number()) }),
    params: Type.Object({ room: Type.String() })
  },
  preHandler: async (request) => {
    const token: string = request.query.token
    const limit: number | undefined = request.query.limit
    const room: string = request.params.room
    // @ts-expect-error `token` is a string
    const wrong: number = request.query.token
    console.log(token, limit, room, wrong)
  },
  messages: {
    whoami: {
      data: Type.Object({ verbose: Type.Boolean() }),
      reply: Type.Object({ token: Type.String(), room: Type.String() }),
      handler: (conn, { verbose }) => {
        const flag: boolean = verbose
        console.log(flag)
        // @ts-expect-error the schema declares no `nope`
        console.log(conn.query.nope)
        return { token: conn.query.token, room: conn.params.room }
      }
    },
    // @ts-expect-error the reply must match its schema
    badReply: { reply: Type.String(), handler: (conn) => conn.query.limit }
  }
})

// Hooks typed by Fastify (or by another plugin) are accepted as they are.
declare function authenticate (request: import('fastify').FastifyRequest, reply: import('fastify').FastifyReply): Promise<void>
app.ws('/authenticated', { onRequest: authenticate, preHandler: [authenticate, authenticate], events: {} })

// Without a generic or schema, the query string and params are records of unknown values.
app.ws('/plain', {
  onRequest: async (request) => {
    const value: unknown = request.query.anything
    // @ts-expect-error unknown until checked
    const text: string = request.query.anything
    console.log(value, text)
  },
  onOpen: (conn) => {
    const value: unknown = conn.query.anything
    console.log(value)
  }
})

// conn.user follows the `user` property declared on FastifyRequest (required here, by the tests and the example).
app.ws('/user', {
  onOpen: (conn) => {
    const id: string = conn.user.id
    // @ts-expect-error the declared user has no `name`
    console.log(conn.user.name, id)
  }
})
// The same lookup for a `user` declared optional (`user?: User`): `User | undefined`; none: unknown.
const optionalUser: UserOf<{ user?: { id: string } }> = undefined
const requiredUser: UserOf<{ user: { id: string } }> = { id: 'a' }
// @ts-expect-error a required user is never undefined
const notUndefined: UserOf<{ user: { id: string } }> = undefined
const noUser: UserOf<{ query: unknown }> = 'anything'
// @ts-expect-error without a declared user, conn.user is unknown
const noUserId: string = (null as unknown as UserOf<{ query: unknown }>).id
console.log(optionalUser, requiredUser, notUndefined, noUser, noUserId)

// emitWithAck(): resolves with the route's `acks` schema for the event, `unknown` without one.
const asking = defineRoute({
  path: '/asking',
  events: { confirm: Type.Object({ amount: Type.Number() }), notice: Type.String() },
  acks: { confirm: Type.Object({ ok: Type.Boolean() }) },
  onOpen: async (conn) => {
    const answer = await conn.emitWithAck('confirm', { amount: 1 }, { timeout: 1_000 })
    const ok: boolean = answer.ok
    // @ts-expect-error: the answer has no `amount`
    console.log(answer.amount, ok)
    const free = await conn.emitWithAck('notice', 'hi')
    // @ts-expect-error: an event without an ack schema answers `unknown`
    const text: string = free
    // @ts-expect-error: the event's data is typed as for emit()
    await conn.emitWithAck('confirm', { amount: 'one' })
    // @ts-expect-error: no such event
    await conn.emitWithAck('nope', {})
    // @ts-expect-error: timeout is a number
    await conn.emitWithAck('notice', 'hi', { timeout: '1s' })
    console.log(text)
  }
})
app.ws(asking)
// A connection of a route with acks is still a Connection.
const anyConn: Connection = null as unknown as Parameters<NonNullable<typeof asking['onOpen']>>[0]
const unknownAnswer: Promise<unknown> = anyConn.emitWithAck('anything', {})
console.log(unknownAnswer)
