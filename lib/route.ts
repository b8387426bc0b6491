import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema, HookHandlerDoneFunction, RouteShorthandOptions } from 'fastify'
import type { Static, TSchema } from 'typebox'
import { Compile } from 'typebox/compile'
import type { Validator } from 'typebox/compile'
import type { Connection } from './connection.js'
import { FST_RT_INVALID_OPTION, FST_RT_RESERVED_EVENT, FST_RT_RESERVED_TYPE } from './errors.js'
import { RESERVED_EVENTS, RESERVED_TYPES, type Stringify } from './protocol/envelope.js'
import type { OnMessageErrorHook, PreMessageHook } from './message-hooks.js'
import type { HeartbeatOptions } from './options.js'
import { compileSerializer } from './serialize.js'
import { resolveRateLimit, type RateLimitOptions, type ResolvedRateLimit } from './rate-limit.js'

/** Server events of a route: event name -> TypeBox schema of its `data`. */
export type EventMap = Record<string, TSchema>

/** Event names of an event map. */
export type EventName<E extends EventMap> = keyof E & string

/**
 * The `data` type of event `K`. Wrapped so that the compiler neither infers
 * through TypeBox's `Static` (every branch of it, for a generic `K`) when
 * `emit()` is called, nor expands it when it compares two connections or
 * namespaces of different event maps: either costs about a million type
 * instantiations in the user's program.
 */
export type EventPayload<E extends EventMap, K extends EventName<E>> =
  NoInfer<E[K] extends infer S extends TSchema ? Static<S> : never>

/** The static type of each `acks` schema, by event. */
export type AckAnswers<A extends EventMap> = { [K in keyof A]: Static<A[K]> }

/**
 * What `conn.emitWithAck(K)` resolves with: the static type of the route's
 * `acks` schema for event `K`, `unknown` without one. An indexed access,
 * not a conditional on `K`, so that connections of different ack maps
 * still compare; the wide EventMap (any `Connection`) short-cuts to
 * `unknown` rather than expand `Static<TSchema>` when two connections are
 * compared (a million instantiations in the quick start otherwise).
 * NoInfer for the reason EventPayload has it.
 */
export type AckAnswer<A extends EventMap, K extends string> =
  NoInfer<string extends keyof A ? unknown : (AckAnswers<A> & Record<string, unknown>)[K]>

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

/**
 * What a hook put on the request as `request.user`: the type of the `user`
 * property declared on FastifyRequest (by the app, or by a plugin such as
 * @fastify/jwt), optional or required; `unknown` when none is declared.
 *
 *   declare module 'fastify' {
 *     interface FastifyRequest { user?: User }
 *   }
 */
export type RequestUser = UserOf<FastifyRequest>

/** The type of a request's `user` property (`U | undefined` when it is optional), `unknown` without one. */
export type UserOf<Req> = Req extends { user: infer U } ? U : Req extends { user?: infer U } ? U | undefined : unknown

/**
 * A WebSocket route's generic, like Fastify's RouteGenericInterface: the
 * types of the upgrade request's query string, route parameters and headers,
 * e.g. `app.ws<{ Querystring: { token: string } }>('/chat', {...})`.
 */
export interface WsRouteGeneric {
  Querystring?: unknown
  Params?: unknown
  Headers?: unknown
}

/** The upgrade request's types a route resolved, from its generic or else from its schemas. */
export interface UpgradeTypes {
  Querystring: unknown
  Params: unknown
  Headers: unknown
}

/** A route without a generic or schemas: what Fastify's default parsers give. */
export interface DefaultUpgradeTypes {
  Querystring: Record<string, unknown>
  Params: Record<string, unknown>
  Headers: unknown
}

type FromSchema<S, Part extends string, Otherwise> = S extends { [P in Part]: infer T extends TSchema } ? Static<T> : Otherwise

/**
 * The upgrade request's types: each from the route's generic (`G`) when it
 * names it, else from the route's TypeBox schema (`schema.querystring`,
 * `params`, `headers`), else the defaults.
 */
export interface ResolveUpgradeTypes<G extends WsRouteGeneric, S> {
  Querystring: G extends { Querystring: infer T } ? T : FromSchema<S, 'querystring', Record<string, unknown>>
  Params: G extends { Params: infer T } ? T : FromSchema<S, 'params', Record<string, unknown>>
  Headers: G extends { Headers: infer T } ? T : FromSchema<S, 'headers', unknown>
}

/** The upgrade request as a route's hooks and `onOpen` see it. */
export type UpgradeRequest<T extends UpgradeTypes = DefaultUpgradeTypes> =
  FastifyRequest<{ Querystring: T['Querystring'], Params: T['Params'], Headers: T['Headers'] }>

/**
 * A hook on the upgrade request (`onRequest`, `preValidation`,
 * `preHandler`): async `(request, reply)`, or `(request, reply, done)`.
 */
export type UpgradeHook<Req = UpgradeRequest> =
  (this: FastifyInstance, request: Req, reply: FastifyReply, done: HookHandlerDoneFunction) => unknown

/** Fastify route options that run on the upgrade request, before any 101, typed as Fastify types them. */
export type FastifyUpgradeOptions = Pick<RouteShorthandOptions,
'preParsing' | 'preSerialization' | 'onSend' | 'onResponse' | 'onError' | 'onRequestAbort' | 'config' | 'logLevel' |
'constraints' | 'errorHandler'>

/** Fastify route options that run on the upgrade request, before any 101; the request typed by the route. */
export interface UpgradeRouteOptions<Req = UpgradeRequest, S = FastifySchema> extends FastifyUpgradeOptions {
  /** Runs first on the upgrade request (after the plugin's origin and capacity checks). */
  onRequest?: UpgradeHook<Req> | Array<UpgradeHook<Req>>
  /** Runs after Fastify validated the request against `schema`. */
  preValidation?: UpgradeHook<Req> | Array<UpgradeHook<Req>>
  /** Runs last before the upgrade. */
  preHandler?: UpgradeHook<Req> | Array<UpgradeHook<Req>>
  /**
   * Fastify schemas of the upgrade request (`querystring`, `params`,
   * `headers`): a failure answers HTTP 400 before any upgrade. TypeBox
   * schemas also type `request.query` (and `params`, `headers`) in the
   * hooks, `onOpen` and `conn.query` / `conn.params`.
   */
  schema?: S
}

/** Options every WebSocket route takes, raw or not. */
export interface RouteCommon<C, Req = UpgradeRequest, S = FastifySchema> extends UpgradeRouteOptions<Req, S> {
  /**
   * Runs once the socket is open, with the upgrade request; frames that
   * arrive meanwhile are handled after it settles, in order.
   */
  onOpen?: (conn: C, request: Req) => void | Promise<void>
  /**
   * Runs exactly once when the connection is gone, for any reason, if its
   * `onOpen` ran (a connection lost before that gets neither); rooms are already left.
   */
  onClose?: (conn: C, code: number, reason: string) => void | Promise<void>
  /** Overrides the plugin's heartbeat for this route; `false` turns it off. */
  heartbeat?: HeartbeatOptions | false
  /** Overrides the plugin's `allowedOrigins` for this route (a list, or `'*'` for any origin). */
  allowedOrigins?: readonly string[] | '*'
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

/** The connection of a route: its events, the user, the upgrade request's query and params, its ack schemas. */
export type RouteConnection<E extends EventMap, T extends UpgradeTypes, A extends EventMap = EventMap> =
  Connection<E, RequestUser, T['Querystring'], T['Params'], A>

/**
 * A route speaking the JSON envelope, with typed message handlers and events.
 * `T` types the upgrade request (see ResolveUpgradeTypes), `S` is its schema.
 */
export interface JsonRouteDefinition<D = Record<string, TSchema>, R = Record<string, TSchema>, E extends EventMap = EventMap,
  T extends UpgradeTypes = DefaultUpgradeTypes, S = FastifySchema, A extends EventMap = EventMap>
  extends RouteCommon<RouteConnection<E, T, A>, UpgradeRequest<T>, S> {
  raw?: false
  /** Inbound message types: schema, optional reply schema, handler. */
  messages?: MessageDefinitions<D, R, RouteConnection<E, T, A>>
  /** Server events this route emits: name -> schema of `data`. Types `emit()`. */
  events?: E
  /**
   * Schemas of the client's answers to `conn.emitWithAck()`, by event: an
   * answer that does not match rejects with FST_RT_ACK_INVALID. Types what
   * `emitWithAck()` resolves with (`unknown` for an event without one).
   */
  acks?: A
  /**
   * Runs after validation, before the handler, after the hooks added with
   * `app.realtime.addHook('preMessage')`: throw a RealtimeError to refuse
   * the message with its code.
   */
  preMessage?: PreMessageHook<RouteConnection<E, T, A>> | Array<PreMessageHook<RouteConnection<E, T, A>>>
  /** Called, after the plugin's, when a message of this route ends in an error answer. */
  onMessageError?: OnMessageErrorHook<RouteConnection<E, T, A>> | Array<OnMessageErrorHook<RouteConnection<E, T, A>>>
  /**
   * Writes replies and events through their schemas' serialisers, as
   * Fastify does with response schemas: fields a schema does not declare
   * never leave the server, and a value that does not fit fails (a reply
   * becomes INTERNAL). `false`: JSON.stringify what the handler gives.
   * @default true
   */
  serialize?: boolean
  /**
   * Session recovery: the first frame is `{"type":"session","data":{"id","recovered"}}`,
   * every broadcast carries its position `pos`, and a client that comes back
   * with `?resume=<id>&pos=<last pos>` within `window` gets its rooms back and
   * every event it missed, in order, before any live one (docs/recovery.md).
   * `true` takes the defaults.
   * @default false
   */
  recovery?: boolean | RecoveryOptions
}

/** Route option `recovery`. */
export interface RecoveryOptions {
  /**
   * Milliseconds after a connection is lost during which its session can come back.
   * @default 120000
   */
  window?: number
  /**
   * Events the namespace's history keeps, all rooms together; a client whose
   * position is older than the oldest kept gets a fresh session.
   * @default 10000
   */
  maxEvents?: number
}

/** A route for protocols that are not the envelope: every frame goes to `onMessage` as it came. */
export interface RawRouteDefinition<T extends UpgradeTypes = DefaultUpgradeTypes, S = FastifySchema>
  extends RouteCommon<RouteConnection<EventMap, T>, UpgradeRequest<T>, S> {
  raw: true
  /** Called for every frame, text or binary. */
  onMessage: (conn: RouteConnection<EventMap, T>, data: Buffer, isBinary: boolean) => void | Promise<void>
}

/** A route declared as a value, for `app.ws(route)` and for the type of a client. */
export type RouteWithPath<D> = D & { path: string }

/**
 * Declares a JSON route as a value: `app.ws(chat)` registers it, and
 * `typeof chat` types a client without importing server code.
 */
export function defineRoute<G extends WsRouteGeneric = WsRouteGeneric, D = Record<string, TSchema>, R = Record<string, TSchema>,
  E extends EventMap = Record<never, TSchema>, S extends FastifySchema = FastifySchema, A extends EventMap = Record<never, TSchema>> (
  route: RouteWithPath<JsonRouteDefinition<D, R, E, ResolveUpgradeTypes<G, S>, S, A>>): RouteWithPath<JsonRouteDefinition<D, R, E, ResolveUpgradeTypes<G, S>, S, A>>
export function defineRoute<G extends WsRouteGeneric = WsRouteGeneric, S extends FastifySchema = FastifySchema> (
  route: RouteWithPath<RawRouteDefinition<ResolveUpgradeTypes<G, S>, S>>): RouteWithPath<RawRouteDefinition<ResolveUpgradeTypes<G, S>, S>>
export function defineRoute (route: unknown): unknown {
  return route
}

/** @internal a message type after registration: its compiled validator and handler. */
export interface CompiledMessage {
  readonly validator: Validator | undefined
  readonly handler: (conn: Connection<EventMap>, data: unknown) => unknown
  readonly rateLimit: ResolvedRateLimit | undefined
  /** The reply schema's serialiser; JSON.stringify without one. */
  readonly stringifyReply: Stringify | undefined
}

/** Checks a route's `events`: an object whose names are not reserved (RESERVED_EVENTS). */
export function checkEvents (path: string, events: unknown): void {
  if (events === undefined) return
  if (events === null || typeof events !== 'object') throw new FST_RT_INVALID_OPTION(`${path} events`, 'an object of event schemas')
  for (const name of Object.keys(events)) {
    if (RESERVED_EVENTS.has(name)) throw new FST_RT_RESERVED_EVENT(name)
  }
}

/** Compiles a route's `acks` schemas once, at registration: event name -> validator of the client's answer. */
export function compileAcks (path: string, acks: unknown): Map<string, Validator> {
  const compiled = new Map<string, Validator>()
  if (acks === undefined) return compiled
  if (acks === null || typeof acks !== 'object') throw new FST_RT_INVALID_OPTION(`${path} acks`, 'an object of answer schemas')
  for (const [name, schema] of Object.entries(acks)) {
    if (schema === null || typeof schema !== 'object') throw new FST_RT_INVALID_OPTION(`${path} acks.${name}`, 'a schema')
    compiled.set(name, Compile(schema as TSchema))
  }
  return compiled
}

/** Compiles every `data` schema once, at registration, and checks the declaration. */
export function compileMessages (path: string, messages: Record<string, unknown> | undefined,
  serialize = true): Map<string, CompiledMessage> {
  const compiled = new Map<string, CompiledMessage>()
  if (messages === undefined) return compiled
  if (messages === null || typeof messages !== 'object') {
    throw new FST_RT_INVALID_OPTION(`${path} messages`, 'an object of message definitions')
  }
  for (const [type, spec] of Object.entries(messages)) {
    if (RESERVED_TYPES.has(type)) throw new FST_RT_RESERVED_TYPE(type)
    const def = spec as { data?: TSchema, reply?: TSchema, handler?: unknown, rateLimit?: RateLimitOptions }
    if (def === null || typeof def !== 'object' || typeof def.handler !== 'function') {
      throw new FST_RT_INVALID_OPTION(`${path} messages.${type}.handler`, 'a function')
    }
    compiled.set(type, {
      validator: def.data === undefined ? undefined : Compile(def.data),
      handler: def.handler as CompiledMessage['handler'],
      rateLimit: resolveRateLimit(`${path} messages.${type}.rateLimit`, def.rateLimit),
      stringifyReply: serialize && def.reply !== undefined ? compileSerializer(def.reply) : undefined
    })
  }
  return compiled
}
