/*
 * Type tests of the client: this file must compile (`npm run typecheck`),
 * and every line marked @ts-expect-error must fail to. Nothing here runs.
 * The route's type comes from the example's `defineRoute()` value through
 * a type-only import, as an app's front end would take it.
 */
import WebSocket from 'ws'
import { connect, RealtimeClientError, type ConnectionState, type StateInfo } from 'fastify-realtime/client'
import type { chat } from '../../example/chat-route.js'

const c = connect<typeof chat>('ws://127.0.0.1:3000/chat', { WebSocket, token: () => 'demo-alice' })

// Events: the payload is typed from the server's events schema.
c.on('said', (d) => {
  const room: string = d.room
  const text: string = d.text
  const from: string = d.from
  // @ts-expect-error: `said` has no `at`
  console.log(d.at, room, text, from)
})
c.on('notification', (d) => {
  const text: string = d.text
  // @ts-expect-error: a string is not a number
  const n: number = d.text
  console.log(text, n)
})
// @ts-expect-error: the route has no event `sayd`
c.on('sayd', () => {})
// @ts-expect-error: a `said` listener cannot take a number
c.on('said', (d: number) => d)

// The client's own events.
c.on('state', (s, info) => {
  const state: ConnectionState = s
  const detail: StateInfo = info
  // The HTTP status of a refused upgrade, where the WebSocket implementation tells it.
  const status: number | undefined = info.status
  // On a route with session recovery, after a reconnect: whether the session came back.
  const recovered: boolean | undefined = info.recovered
  // @ts-expect-error: not a state
  const wrong: 'online' = s
  console.log(state, detail, status, recovered, wrong)
})
c.on('error', (err) => {
  const error: RealtimeClientError = err
  const code: string = err.code
  console.log(error, code)
})

// Requests: data and reply typed from the message's schemas.
const { at } = await c.request('say', { room: 'r1', text: 'hi' }, { timeout: 5_000 })
const when: number = at
// @ts-expect-error: the reply is `{ at: number }`, with no `ok`
const { ok } = await c.request('say', { room: 'r1', text: 'hi' })
// @ts-expect-error: `at` is a number
const atText: string = (await c.request('say', { room: 'r1', text: 'hi' })).at
// @ts-expect-error: `text` is missing
await c.request('say', { room: 'r1' })
// @ts-expect-error: `room` must be a string
await c.request('say', { room: 1, text: 'hi' })
// @ts-expect-error: the route has no message `shout`
await c.request('shout', { room: 'r1', text: 'hi' })
// @ts-expect-error: `join` needs its data
c.send('join')
console.log(when, ok, atText)

// Sends.
const sent: boolean = c.send('join', { room: 'r1' })
// @ts-expect-error: `join` takes `{ room }`
c.send('join', { name: 'r1' })
// @ts-expect-error: the route has no message `kick`
c.send('kick', { room: 'r1' })
console.log(sent)

// The session of a route with recovery: read-only.
const session: { readonly id: string, readonly pos?: string | undefined } | undefined = c.session
// @ts-expect-error: read-only
c.session = undefined
console.log(session)

// Options are typed from the route too.
connect<typeof chat>('/chat', {
  replay: { join: 'leave' },
  onReconnect: async (restore) => {
    if (restore.recovered) return
    await restore.request('join', { room: 'lobby' })
    // @ts-expect-error: `join` takes `{ room }`
    restore.send('join', { lobby: true })
  }
})
// @ts-expect-error: `enter` is not a message of the route
connect<typeof chat>('/chat', { replay: { enter: 'leave' } })

// Without a route type, anything goes and payloads are unknown.
const untyped = connect('ws://127.0.0.1:3000/chat', { WebSocket })
untyped.on('whatever', (d) => {
  // @ts-expect-error: unknown until checked
  console.log(d.field)
})
const reply: unknown = await untyped.request('anything', { x: 1 })
untyped.send('ping-me')
console.log(reply)
c.close()
untyped.close()

// Answers to conn.emitWithAck(): a listener returns the route's `acks` type for the event.
interface Asking {
  events: { confirm: import('typebox').TObject<{ amount: import('typebox').TNumber }> }
  acks: { confirm: import('typebox').TObject<{ ok: import('typebox').TBoolean }> }
}
const a = connect<Asking>('ws://127.0.0.1:3000/asking', { WebSocket })
a.on('confirm', ({ amount }) => ({ ok: amount > 0 }))
a.on('confirm', async () => ({ ok: true }))
a.on('confirm', () => {})
// @ts-expect-error: the answer must fit the ack schema
a.on('confirm', () => ({ ok: 'yes' }))
// @ts-expect-error: an async answer too
a.on('confirm', async () => 1)
// Without an ack schema a listener may return anything.
c.on('said', () => 42)
