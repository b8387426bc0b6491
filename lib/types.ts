import type { TSchema } from 'typebox'
import type { Namespace } from './namespace.js'
import type { Realtime } from './realtime.js'
import type { EventMap, JsonRouteDefinition, RawRouteDefinition, RouteWithPath } from './route.js'

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

/** The `app.realtime` decorator, with `namespace()` typed by RealtimeNamespaces. */
export interface RealtimeDecorator extends Omit<Realtime, 'namespace'> {
  /** The namespace of a route path; throws FST_RT_UNKNOWN_NAMESPACE if no route is declared there. */
  namespace<P extends string> (path: P): Namespace<NamespaceEvents<P>>
  /** The namespace of a route declared with `defineRoute()`, typed from its events. */
  namespace<E extends EventMap> (route: RouteWithPath<JsonRouteDefinition<any, any, E>>): Namespace<E>
}

/** `app.ws()`: declares a WebSocket route and returns its namespace. */
export interface WsRouteMethod {
  <D, R, E extends EventMap = Record<never, TSchema>> (path: string, route: JsonRouteDefinition<D, R, E> | RawRouteDefinition): Namespace<E>
  <D, R, E extends EventMap = Record<never, TSchema>> (route: RouteWithPath<JsonRouteDefinition<D, R, E>> | RouteWithPath<RawRouteDefinition>): Namespace<E>
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Namespaces, user-wide commands and broker status of fastify-realtime. */
    realtime: RealtimeDecorator
    /** Declares a WebSocket route next to the REST routes; its hooks and schemas run before the upgrade. */
    ws: WsRouteMethod
  }
}
