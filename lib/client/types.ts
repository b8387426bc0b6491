/*
 * The client's types, read off a route's type: `connect<typeof chat>()`
 * with `chat` declared by `defineRoute()` on the server. Only types are
 * imported, so nothing of the server (nor of typebox) ends up in a bundle.
 */
import type { Static, TSchema } from 'typebox'

/**
 * What the client reads of a route's type: its `messages` (each with an
 * optional `data` and `reply` schema) and its `events`. The type of a
 * `defineRoute()` value fits.
 */
export interface RouteShape {
  messages?: object
  events?: object
  acks?: object
}

/** A route known only at run time: any message type, any event, `unknown` payloads. */
export interface AnyRoute {
  messages: Record<string, { data?: TSchema, reply?: TSchema }>
  events: Record<string, TSchema>
}

type Messages<R> = R extends { messages?: infer M } ? NonNullable<M> : never
type Events<R> = R extends { events?: infer E } ? NonNullable<E> : never
type StaticOrUnknown<S> = [S] extends [TSchema] ? Static<S> : unknown

/** The route's inbound message types. */
export type MessageName<R> = keyof Messages<R> & string

/** The `data` a message type takes, from its schema (`unknown` without one). */
export type MessageData<R, K extends MessageName<R>> =
  Messages<R>[K] extends { data?: infer S } ? StaticOrUnknown<NonNullable<S>> : unknown

/** What a request of this type resolves to, from its reply schema (`unknown` without one). */
export type MessageReply<R, K extends MessageName<R>> =
  Messages<R>[K] extends { reply?: infer S } ? StaticOrUnknown<NonNullable<S>> : unknown

/** The route's server events. */
export type EventName<R> = keyof Events<R> & string

/** The `data` of a server event, from its schema. */
export type EventData<R, K extends EventName<R>> = StaticOrUnknown<Events<R>[K]>

type Acks<R> = R extends { acks?: infer A } ? NonNullable<A> : never

/**
 * What a listener of event `K` answers when the server asks with
 * `conn.emitWithAck()`: the type of the route's `acks` schema for `K`
 * (`unknown`, anything JSON can carry, without one).
 */
export type EventAnswer<R, K extends string> =
  [Acks<R>] extends [never] ? unknown : K extends keyof Acks<R> ? StaticOrUnknown<Acks<R>[K]> : unknown

/** A listener of a server event: its return value (or promise) is the answer when the server asked for one. */
export type EventListener<R, K extends EventName<R>> =
  (data: EventData<R, K>) => EventAnswer<R, K> | Promise<EventAnswer<R, K>> | void

/** Per-request options. */
export interface RequestOptions {
  /** Milliseconds before the request rejects with `TIMEOUT`; counts time spent queued offline. Defaults to the client's `requestTimeout`. */
  timeout?: number
}

/** `data` may be left out where the message type takes none (or anything). */
export type SendArgs<R, K extends MessageName<R>> =
  undefined extends MessageData<R, K> ? [data?: MessageData<R, K>] : [data: MessageData<R, K>]

/** `data`, then the request's options. */
export type RequestArgs<R, K extends MessageName<R>> =
  undefined extends MessageData<R, K>
    ? [data?: MessageData<R, K>, options?: RequestOptions]
    : [data: MessageData<R, K>, options?: RequestOptions]

/**
 * Where the client is:
 * - `connecting`: the first attempt is under way;
 * - `open`: connected, and after a reconnect, restored (the session resumed, or replayed; `onReconnect` done) with the offline queue sent;
 * - `reconnecting`: the connection was lost; a new attempt is waiting or under way;
 * - `closed`: for good (`close()`, a close code that forbids reconnecting, or `maxAttempts` used up).
 */
export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed'

/** What came with a state change. */
export interface StateInfo {
  /** The close code that ended the last connection (1006 when there was none, e.g. a failed attempt or a liveness timeout). */
  code?: number
  /** Its reason, or the client's own (`ping timeout`, `connect timeout`, `connect failed`: the attempt failed before opening). */
  reason?: string
  /** The HTTP status of a refused upgrade, where the WebSocket implementation tells it (`ws` does; browsers and undici do not). */
  status?: number
  /** Consecutive failed attempts so far. */
  attempt: number
  /** `reconnecting` only: milliseconds until the next attempt. */
  delay?: number
  /**
   * `open` after a reconnect of a route with session recovery: true if the
   * server resumed the session (rooms back, missed events follow, no replay),
   * false if a fresh session began (joins replayed).
   */
  recovered?: boolean
}

/** The session of a route with session recovery (`client.session`). */
export interface SessionInfo {
  /** The id of the server's last `session` frame. */
  readonly id: string
  /** The position of the last event received in this session; undefined before the first. */
  readonly pos?: string | undefined
}

/** How the last connection ended, for `shouldReconnect`. */
export interface CloseInfo {
  code: number
  reason: string
  /** The HTTP status of a refused upgrade, where the WebSocket implementation tells it (`ws` does; browsers and undici do not). */
  status?: number
  /** Whether the connection had opened before it closed. */
  opened: boolean
}

/**
 * The minimal WebSocket the client drives: the browser's (and Node 22's)
 * global `WebSocket`, or the `ws` package's class on Node 20.
 */
export interface WebSocketLike {
  readonly readyState: number
  onopen: ((event: any) => void) | null
  onmessage: ((event: any) => void) | null
  onclose: ((event: any) => void) | null
  onerror: ((event: any) => void) | null
  send (data: string): void
  close (code?: number, reason?: string): void
}

/** A WebSocket class. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike
