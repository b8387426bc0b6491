import type { FastifyRequest, RouteShorthandOptions } from 'fastify'
import type { Static, TSchema } from 'typebox'
import { Compile } from 'typebox/compile'
import type { Validator } from 'typebox/compile'
import type { Connection } from './connection.js'
import { FST_RT_INVALID_OPTION, FST_RT_RESERVED_TYPE } from './errors.js'
import { RESERVED_TYPES } from './protocol/envelope.js'
import type { HeartbeatOptions } from './options.js'
import { resolveRateLimit, type RateLimitOptions, type ResolvedRateLimit } from './rate-limit.js'

/** Server events of a route: event name -> TypeBox schema of its `data`. */
export type EventMap = Record<string, TSchema>

/** Event names of an event map. */
export type EventName<E extends EventMap> = keyof E & string

/** The `data` type of event `K`. */
export type EventPayload<E extends EventMap, K extends EventName<E>> = Static<E[K]>

/** One inbound message type: the schema of its `data` and, for requests, of the reply. */
export interface MessageSpec {
  /** Schema of `data`. Without it `data` is passed on unchecked, typed `unknown`. */
  data?: TSchema
  /** Schema of what the handler returns, sent back as `{"type":"reply","id","data"}`. */
  reply?: TSchema
}

/** The static type of a schema, `unknown` where there is none. */
export type StaticOf<S> = S extends TSchema ? Static<S> : unknown

/** What a handler returns for a reply schema (`void` without one). */
export type ReplyOf<S> = S extends TSchema ? Static<S> : void

/** A message handler; its return value (or resolved value) is the reply. */
export type MessageHandler<Data, Reply, C> = (conn: C, data: StaticOf<Data>) => ReplyOf<Reply> | Promise<ReplyOf<Reply>>

/**
 * The `messages` of a route. `D` maps each type to its data schema and `R`
 * to its reply schema; both are inferred from the object literal, so each
 * handler's `data` and return type follow its own schemas.
 */
export type MessageDefinitions<D, R, C> = {
  [K in keyof D]: {
    /** Schema of `data`. Without it `data` is passed on unchecked, typed `unknown`. */
    data?: D[K]
    /** Receives the validated `data`; what it returns is the reply. */
    handler: MessageHandler<D[K], K extends keyof R ? R[K] : undefined, C>
    /** An inbound budget for this message type alone, on top of the route's. */
    rateLimit?: RateLimitOptions
  }
} & {
  [K in keyof R]: {
    /** Schema of what the handler returns, sent back as `{"type":"reply","id","data"}`. */
    reply?: R[K]
  }
}

/** What a hook put on the request as `request.user` (typed when `FastifyRequest['user']` is declared, as @fastify/jwt does). */
export type RequestUser = FastifyRequest extends { user: infer U } ? U : unknown

/** Fastify route options that run on the upgrade request, before any 101. */
export type UpgradeRouteOptions = Pick<RouteShorthandOptions,
'onRequest' | 'preParsing' | 'preValidation' | 'preHandler' | 'preSerialization' | 'onSend' | 'onResponse' |
'onError' | 'onRequestAbort' | 'schema' | 'config' | 'logLevel' | 'constraints' | 'errorHandler'>

/** Options every WebSocket route takes, raw or not. */
export interface RouteCommon<C> extends UpgradeRouteOptions {
  /**
   * Runs once the socket is open, with the upgrade request; frames that
   * arrive meanwhile are handled after it settles, in order.
   */
  onOpen?: (conn: C, request: FastifyRequest) => void | Promise<void>
  /** Runs exactly once when the connection is gone, for any reason; rooms are already left. */
  onClose?: (conn: C, code: number, reason: string) => void | Promise<void>
  /** Overrides the plugin's heartbeat for this route; `false` turns it off. */
  heartbeat?: HeartbeatOptions | false
  /** Overrides the plugin's `allowedOrigins` for this route. */
  allowedOrigins?: readonly string[]
  /** Overrides the plugin's `maxBufferedBytes` for this route. */
  maxBufferedBytes?: number
  /** Overrides the plugin's `slowConsumer` policy for this route. */
  slowConsumer?: 'close' | 'drop'
  /** Overrides the plugin's inbound `rateLimit` for this route (`false`: none). */
  rateLimit?: RateLimitOptions | false
  /**
   * Decides whether a connection may join a room; `false` rejects the join
   * with FORBIDDEN and nothing from the room reaches the connection.
   */
  canJoin?: (conn: C, room: string) => boolean | Promise<boolean>
  /**
   * Keeps `conn.request` for the connection's whole life instead of
   * releasing it after `onOpen` (about 1.6 KB more per connection).
   * @default false
   */
  keepRequest?: boolean
  /**
   * Tracks who is in each room, across instances (`namespace.presence(room)`);
   * `{ events: true }` also sends `presence` events (join, leave) to the room's members.
   * @default false
   */
  presence?: boolean | { events?: boolean }
  /**
   * Subprotocols this route speaks. The server picks the first the client
   * offers (`Sec-WebSocket-Protocol`) that is in this list; a client that
   * offers only others is refused with HTTP 400 (FST_RT_UNSUPPORTED_PROTOCOL),
   * one that offers none is let in without a subprotocol.
   * @default undefined (no subprotocol is ever chosen)
   */
  protocols?: readonly string[]
}

/** A route speaking the JSON envelope, with typed message handlers and events. */
export interface JsonRouteDefinition<D = Record<string, unknown>, R = Record<string, unknown>, E extends EventMap = EventMap>
  extends RouteCommon<Connection<E>> {
  raw?: false
  /** Inbound message types: schema, optional reply schema, handler. */
  messages?: MessageDefinitions<D, R, Connection<E>>
  /** Server events this route emits: name -> schema of `data`. Types `emit()`. */
  events?: E
}

/** A route for protocols that are not the envelope: every frame goes to `onMessage` as it came. */
export interface RawRouteDefinition extends RouteCommon<Connection<EventMap>> {
  raw: true
  /** Called for every frame, text or binary. */
  onMessage: (conn: Connection<EventMap>, data: Buffer, isBinary: boolean) => void | Promise<void>
}

/** A route declared as a value, for `app.ws(route)` and for the type of a client. */
export type RouteWithPath<D> = D & { path: string }

/**
 * Declares a JSON route as a value: `app.ws(chat)` registers it, and
 * `typeof chat` types a client without importing server code.
 */
export function defineRoute<D, R, E extends EventMap = Record<never, TSchema>> (
  route: RouteWithPath<JsonRouteDefinition<D, R, E>>): RouteWithPath<JsonRouteDefinition<D, R, E>>
export function defineRoute (route: RouteWithPath<RawRouteDefinition>): RouteWithPath<RawRouteDefinition>
export function defineRoute (route: unknown): unknown {
  return route
}

/** @internal a message type after registration: its compiled validator and handler. */
export interface CompiledMessage {
  readonly validator: Validator | undefined
  readonly handler: (conn: Connection<EventMap>, data: unknown) => unknown
  readonly rateLimit: ResolvedRateLimit | undefined
}

/** Compiles every `data` schema once, at registration, and checks the declaration. */
export function compileMessages (path: string, messages: Record<string, unknown> | undefined): Map<string, CompiledMessage> {
  const compiled = new Map<string, CompiledMessage>()
  if (messages === undefined) return compiled
  if (messages === null || typeof messages !== 'object') {
    throw new FST_RT_INVALID_OPTION(`${path} messages`, 'an object of message definitions')
  }
  for (const [type, spec] of Object.entries(messages)) {
    if (RESERVED_TYPES.has(type)) throw new FST_RT_RESERVED_TYPE(type)
    const def = spec as { data?: TSchema, handler?: unknown, rateLimit?: RateLimitOptions }
    if (def === null || typeof def !== 'object' || typeof def.handler !== 'function') {
      throw new FST_RT_INVALID_OPTION(`${path} messages.${type}.handler`, 'a function')
    }
    compiled.set(type, {
      validator: def.data === undefined ? undefined : Compile(def.data),
      handler: def.handler as CompiledMessage['handler'],
      rateLimit: resolveRateLimit(`${path} messages.${type}.rateLimit`, def.rateLimit)
    })
  }
  return compiled
}
