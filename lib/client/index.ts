/*
 * fastify-realtime/client: a typed client for the wire protocol of
 * docs/protocol.md, for browsers and Node, with no dependencies.
 */
import { RealtimeClient } from './client.js'
import type { ClientOptions } from './options.js'
import type { AnyRoute, RouteShape } from './types.js'

/**
 * Opens a connection that keeps itself connected. Type it with the route:
 * `connect<typeof chat>(url, options)`, where `chat` is the server's
 * `defineRoute()` value, imported with `import type`.
 */
export function connect<R extends RouteShape = AnyRoute> (url: string | URL, options?: ClientOptions<R>): RealtimeClient<R> {
  return new RealtimeClient<R>(url, options)
}

export { RealtimeClient } from './client.js'
export type { ClientOptions } from './options.js'
export type { Restorer } from './replay.js'
export { RealtimeClientError, ClientErrorCode, type ErrorDetail } from './errors.js'
export { shouldReconnect, type ReconnectOptions } from './reconnect.js'
export type { PingOptions } from './liveness.js'
export type {
  AnyRoute, CloseInfo, ConnectionState, EventAnswer, EventData, EventListener, EventName, MessageData, MessageName, MessageReply,
  RequestOptions, RouteShape, SessionInfo, StateInfo, WebSocketConstructor, WebSocketLike
} from './types.js'
