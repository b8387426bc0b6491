import type { EventEmitter } from 'node:events'
import type { FastifyBaseLogger, FastifySchema } from 'fastify'
import type { TSchema } from 'typebox'
import type { AsyncApiDocument } from './asyncapi.js'
import type { Broker, BrokerStatus } from './broker.js'
import type { AnyRoute } from './client/types.js'
import type { Connection } from './connection.js'
import type { InjectedClient, InjectOptions } from './inject.js'
import type { OnMessageErrorHook, PreMessageHook } from './message-hooks.js'
import type { Namespace } from './namespace.js'
import type { EventMap, JsonRouteDefinition, RawRouteDefinition, ResolveUpgradeTypes, RouteWithPath, WsRouteGeneric } from './route.js'

/**
 * Event maps of namespaces looked up by path. Augment it to type
 * `app.realtime.namespace('/chat')`:
 *
 *   declare module 'fastify-realtime' {
 *     interface RealtimeNamespaces { '/chat': typeof chatEvents }
 *   }
 */
export interface RealtimeNamespaces {}

/** The event map of a namespace path: declared in RealtimeNamespaces, or any event with unknown data. */
export type NamespaceEvents<P extends string> = P extends keyof RealtimeNamespaces
  ? RealtimeNamespaces[P] extends EventMap ? RealtimeNamespaces[P] : EventMap
  : Record<string, TSchema>

/**
 * The `app.realtime` decorator: namespaces, user-wide commands, broker
 * status and counters of this instance. An EventEmitter of `broker:down`
 * and `broker:up`.
 */
export interface RealtimeDecorator extends EventEmitter {
  /** This instance's id, a prefix of every connection id it hands out. */
  readonly instanceId: string
  /** The broker carrying broadcasts between instances. */
  readonly broker: Broker
  /** The plugin's logger. */
  readonly log: FastifyBaseLogger
  /** Whether the broker reaches the other instances now (`up` always without Redis). */
  readonly brokerStatus: BrokerStatus
  /** Connections open on this instance, all namespaces together. */
  readonly connectionCount: number
  /** Messages dropped for slow consumers (`slowConsumer: 'drop'`) on this instance. */
  readonly droppedMessages: number
  /** Connections closed with 4001 for reading too slowly (`slowConsumer: 'close'`) on this instance. */
  readonly slowConsumersClosed: number
  /** Whether `app.close()` has begun: new upgrades are refused with 503. */
  readonly closing: boolean
  /** Heartbeat timers running (one per distinct setting in use), for leak checks. */
  readonly heartbeatTimers: number
  /** The namespace of a route path; throws FST_RT_UNKNOWN_NAMESPACE if no route is declared there. */
  namespace<P extends string> (path: P): Namespace<NamespaceEvents<P>>
  /** The namespace of a route declared with `defineRoute()`, typed from its events. */
  namespace<E extends EventMap> (route: RouteWithPath<JsonRouteDefinition<any, any, E, any, any>>): Namespace<E>
  /** Every namespace declared on this instance. */
  namespaces (): Namespace[]
  /**
   * Closes every connection of a user, on every instance, with `code`
   * (default 4403, DISCONNECTED). Resolves once the command has left this instance.
   */
  disconnectUser (userId: string, code?: number, reason?: string): Promise<void>
  /** Connections of a user on this instance. */
  userConnections (userId: string): Connection<any, any>[]
  /**
   * Opens a connection on a route without a port, for tests: the route's
   * hooks run on the upgrade; a refused upgrade rejects with an
   * InjectUpgradeError carrying its `statusCode`. Typed from a route value.
   */
  inject<R extends RouteWithPath<JsonRouteDefinition<any, any, any>>> (route: R, options?: InjectOptions): Promise<InjectedClient<R>>
  /** Same, by path: any message type, any event, `unknown` payloads. */
  inject (path: string, options?: InjectOptions): Promise<InjectedClient<AnyRoute>>
  /**
   * Adds a message hook, encapsulated like Fastify's hooks: it covers the
   * routes declared in this context (`app`, or a child plugin's instance:
   * `child.realtime.addHook()`) and its descendants, declared before or
   * after it. `preMessage` runs after validation, before the handler (a
   * thrown RealtimeError refuses the message with its code);
   * `onMessageError` is told of every error answer. Throws
   * FST_RT_HOOK_AFTER_READY once the app is ready.
   */
  addHook (name: 'preMessage', hook: PreMessageHook): this
  addHook (name: 'onMessageError', hook: OnMessageErrorHook): this
  /**
   * The AsyncAPI 3.0 document of the routes: channels, messages with their
   * schemas and replies, events, the error frame and the close codes.
   */
  asyncapi (): AsyncApiDocument
}

/**
 * `app.ws()`: declares a WebSocket route and returns its namespace.
 *
 * Message handlers, events and the schema are inferred from the route
 * object. `G` types the upgrade request like Fastify's route generic
 * (`app.ws<{ Querystring: { token: string } }>(...)`); TypeScript does not
 * infer the other type parameters once one is given, so a route with
 * messages types its query string through a TypeBox `schema.querystring`.
 */
export interface WsRouteMethod {
  <G extends WsRouteGeneric = WsRouteGeneric, D = Record<string, TSchema>, R = Record<string, TSchema>,
    E extends EventMap = Record<never, TSchema>, S extends FastifySchema = FastifySchema, A extends EventMap = Record<never, TSchema>> (path: string,
    route: JsonRouteDefinition<D, R, E, ResolveUpgradeTypes<G, S>, S, A> | RawRouteDefinition<ResolveUpgradeTypes<G, S>, S>): Namespace<E>
  <E extends EventMap = Record<never, TSchema>> (route: RouteWithPath<JsonRouteDefinition<any, any, E, any, any>> |
  RouteWithPath<RawRouteDefinition<any, any>>): Namespace<E>
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Namespaces, user-wide commands and broker status of fastify-realtime. */
    realtime: RealtimeDecorator
    /** Declares a WebSocket route next to the REST routes; its hooks and schemas run before the upgrade. */
    ws: WsRouteMethod
  }
}
