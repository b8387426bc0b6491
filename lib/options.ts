import type { WebsocketPluginOptions } from '@fastify/websocket'
import type { ServerOptions } from 'ws'
import type { Broker } from './broker.js'
import type { RateLimitOptions, ResolvedRateLimit } from './rate-limit.js'
import type { OriginPolicy } from './validate-options.js'

/*
 * The plugin's options: their types and their defaults, in one place for
 * the plugin, the Redis broker and the emitter. Validation is in
 * validate-options.ts.
 */

/** Protocol-level ping/pong that finds dead peers. */
export interface HeartbeatOptions {
  /**
   * Milliseconds between two pings.
   * @default 30000
   */
  interval?: number
  /**
   * Milliseconds a peer has to answer a ping before it is terminated; at most `interval`.
   * @default 10000
   */
  timeout?: number
}

/**
 * What the `redis` option takes: an ioredis client (single node or cluster)
 * to reuse, a `redis://` or `rediss://` URL, or ioredis options. Typed
 * without ioredis, so an app that does not use Redis type-checks without it
 * installed; `fastify-realtime/redis` exports the precise `RedisConnection`.
 */
export type RedisOption = string | object

/** The `ws` server options the plugin can honour (one server serves every route). */
export type WebsocketServerOptions = Pick<ServerOptions, 'maxPayload' | 'perMessageDeflate' | 'clientTracking' |
'handleProtocols' | 'verifyClient' | 'skipUTF8Validation' | 'allowSynchronousEvents' | 'autoPong' | 'maxBufferedChunks' |
'maxFragments' | 'WebSocket'> & {
  /** Milliseconds ws waits for the closing handshake before it destroys the socket. */
  closeTimeout?: number
  /** Pings a peer may leave unanswered (ws terminates it past them). */
  maxPendingAutoPongs?: number
}

/**
 * @fastify/websocket's own options, for an app that keeps plain
 * `{ websocket: true }` routes beside the plugin's. `errorHandler`,
 * `preClose` and `options.verifyClient` apply to plain routes only; the
 * other `options` configure the one `ws` server, so every route.
 */
export interface WebsocketCompatOptions {
  /** `ws` server options (see WebsocketServerOptions for the ones accepted). */
  options?: WebsocketServerOptions
  /** Errors thrown by a plain route's handler, and its socket's `error` events. */
  errorHandler?: WebsocketPluginOptions['errorHandler']
  /** Closes the plain routes' clients at `app.close()`, after the plugin has closed its own. */
  preClose?: WebsocketPluginOptions['preClose']
}

/** Options of `app.register(realtime, options)`. */
export interface RealtimeOptions {
  /**
   * Largest inbound frame in bytes; a larger one closes the connection with 1009.
   * @default 65536
   */
  maxPayload?: number
  /**
   * Heartbeat for every route (a route may override it); `false` turns it off.
   * @default { interval: 30000, timeout: 10000 }
   */
  heartbeat?: HeartbeatOptions | false
  /**
   * Milliseconds the upgrade request's hooks may take before the upgrade is
   * refused with HTTP 503 and the socket destroyed; `0` turns it off.
   * @default 10000
   */
  upgradeTimeout?: number
  /**
   * Which browser pages may open a WebSocket (against cross-site WebSocket
   * hijacking). Unset: only pages of the server's own host, i.e. the
   * Origin's host[:port] equals the request's Host header (or, with
   * Fastify's `trustProxy`, X-Forwarded-Host); schemes are not compared.
   * A list of origins (`scheme://host[:port]`, matched exactly) allows
   * those and no others; `'*'` allows every origin. A refused Origin gets
   * HTTP 403 before the upgrade. Requests without an Origin header
   * (non-browser clients) are never refused by this check.
   * @default undefined (same host only)
   */
  allowedOrigins?: readonly string[] | '*'
  /**
   * Query-string parameters of upgrade requests whose values are replaced by
   * `[REDACTED]` in Fastify's request logs. Hooks still see the real value.
   * @default ['token', 'access_token']
   */
  redactQueryParams?: readonly string[]
  /**
   * Frames a connection may send while its `onOpen` is still running; one
   * more closes it with 1008.
   * @default 1024
   */
  maxQueuedMessages?: number
  /**
   * Milliseconds `app.close()` waits for clients to answer the 1001 close
   * before it drops their TCP connections.
   * @default 2000
   */
  closeTimeout?: number
  /**
   * Gives the user id of a connection, from `request.user`; connections with
   * an id can be closed with `disconnectUser()`.
   * @default (user) => user?.id as a string, when it is a string or a number
   */
  userId?: (user: unknown) => string | undefined
  /**
   * Bytes a client may have queued and unread (`bufferedAmount`) before
   * `slowConsumer` applies to what is sent to it next.
   * @default 1048576
   */
  maxBufferedBytes?: number
  /**
   * What happens to a client over `maxBufferedBytes`: `'close'` closes it
   * with 4001 (it may reconnect), `'drop'` drops messages for it and counts
   * them (`conn.droppedMessages`, `app.realtime.droppedMessages`).
   * @default 'close'
   */
  slowConsumer?: 'close' | 'drop'
  /**
   * Inbound budget of each connection (routes and message types may set
   * their own): over it a message is answered with RATE_LIMITED; once one
   * budget has refused `maxViolations` messages in a row (each budget counts
   * its own run, which a message it accepts ends) the connection closes with 1008.
   * @default false (no limit)
   */
  rateLimit?: RateLimitOptions | false
  /**
   * Open connections on this instance; one more upgrade gets HTTP 503. 0: no cap.
   * @default 0
   */
  maxConnections?: number
  /**
   * Open connections of one user (see `userId`) on this instance; one more gets HTTP 429. 0: no cap.
   * @default 0
   */
  maxConnectionsPerUser?: number
  /**
   * Open connections from one IP on this instance; one more gets HTTP 429. 0: no cap.
   * @default 0
   */
  maxConnectionsPerIp?: number
  /**
   * Rooms one connection may be in; `join()` past it rejects with ROOM_LIMIT.
   * @default 128
   */
  maxRoomsPerConnection?: number
  /**
   * Longest room name, in characters; a longer one rejects with ROOM_LIMIT.
   * @default 255
   */
  maxRoomNameLength?: number
  /**
   * Milliseconds a client has to answer `conn.emitWithAck()` before its
   * promise rejects with FST_RT_ACK_TIMEOUT (a call's `timeout` overrides it).
   * @default 10000
   */
  ackTimeout?: number
  /**
   * Answers to `conn.emitWithAck()` one connection may await at a time; one
   * more rejects at once with FST_RT_ACK_LIMIT, sending nothing.
   * @default 64
   */
  maxPendingAcks?: number
  /**
   * permessage-deflate (ws option object or true). Off by default: it costs
   * memory and CPU per connection, and inflation is what compression bombs
   * attack (`maxPayload` still bounds the inflated size).
   * @default false
   */
  perMessageDeflate?: boolean | Record<string, unknown>
  /**
   * A delivery backend. Without it (and without `redis`), delivery stays in this process.
   * @default an in-memory broker
   */
  broker?: Broker
  /**
   * Redis for cross-instance delivery: an ioredis client to reuse (e.g.
   * `app.redis` from @fastify/redis; never closed by the plugin), a
   * `redis://` URL or ioredis options (a connection the plugin opens and
   * closes). The plugin subscribes through a duplicate it opens itself.
   * @default undefined (in memory)
   */
  redis?: RedisOption
  /**
   * Prefix of the plugin's Redis channel names.
   * @default 'fastify-realtime'
   */
  redisPrefix?: string
  /**
   * Sharded pub/sub (SSUBSCRIBE/SPUBLISH) for Redis Cluster.
   * @default false
   */
  redisSharded?: boolean
  /**
   * Milliseconds a cross-instance publish may take before its promise rejects
   * with FST_RT_BROKER_UNAVAILABLE (local delivery has happened already).
   * @default 2000
   */
  publishTimeout?: number
  /**
   * Milliseconds `ready` waits for Redis at startup before it fails with FST_RT_BROKER_UNAVAILABLE.
   * @default 10000
   */
  redisReadyTimeout?: number
  /**
   * Milliseconds between health-check PINGs on the Redis subscriber; an
   * unanswered one reconnects it (detects dead network paths). 0: off.
   * @default 5000
   */
  redisHealthCheckInterval?: number
  /**
   * Milliseconds a presence entry outlives its instance's last refresh
   * (refreshes run every ttl / 3): the entries of an instance that died
   * expire within this time, and leave events follow within 4/3 of it.
   * @default 30000
   */
  presenceTtl?: number
  /**
   * @fastify/websocket's options (`options`, `errorHandler`, `preClose`),
   * honoured for plain `{ websocket: true }` routes when the plugin registers
   * @fastify/websocket; refused when it was registered first.
   * @default undefined (@fastify/websocket's defaults, client tracking on)
   */
  websocket?: WebsocketCompatOptions
  /**
   * Serves the AsyncAPI 3.0 document of the routes (`app.realtime.asyncapi()`)
   * as JSON at `path` (a GET route in the plugin's context); `info` sets its
   * title and version.
   * @default undefined (not served)
   */
  asyncapi?: AsyncApiOptions
}

/** The `asyncapi` option. */
export interface AsyncApiOptions {
  /** Where the document is served, e.g. `'/asyncapi.json'`; without it, only `app.realtime.asyncapi()` gives it. */
  path?: string
  /** The document's `info`. */
  info?: {
    /** @default 'WebSocket API' */
    title?: string
    /** @default '1.0.0' */
    version?: string
    /** Prepended to the generated description (envelope and close codes). */
    description?: string
  }
}

/** Options after defaults and validation. */
export interface ResolvedOptions {
  maxPayload: number
  heartbeat: Required<HeartbeatOptions> | false
  upgradeTimeout: number
  allowedOrigins: OriginPolicy
  redactQueryParams: readonly string[]
  maxQueuedMessages: number
  closeTimeout: number
  userId: (user: unknown) => string | undefined
  broker: Broker | undefined
  maxBufferedBytes: number
  slowConsumer: 'close' | 'drop'
  rateLimit: ResolvedRateLimit | undefined
  maxConnections: number
  maxConnectionsPerUser: number
  maxConnectionsPerIp: number
  maxRoomsPerConnection: number
  maxRoomNameLength: number
  ackTimeout: number
  maxPendingAcks: number
  perMessageDeflate: boolean | Record<string, unknown>
  redis: RedisOption | undefined
  redisPrefix: string
  redisSharded: boolean
  publishTimeout: number
  redisReadyTimeout: number
  redisHealthCheckInterval: number
  presenceTtl: number
  websocket: ResolvedWebsocketOptions
  asyncapi: ResolvedAsyncApiOptions
}

/** The `asyncapi` option after validation. */
export interface ResolvedAsyncApiOptions {
  path: string | undefined
  title: string
  version: string
  description: string | undefined
}

/** @fastify/websocket's options after validation; maxPayload and perMessageDeflate are the top-level ones. */
export interface ResolvedWebsocketOptions {
  /** `ws` server options other than maxPayload and perMessageDeflate. */
  serverOptions: Omit<WebsocketServerOptions, 'maxPayload' | 'perMessageDeflate'>
  errorHandler: WebsocketPluginOptions['errorHandler'] | undefined
  preClose: WebsocketPluginOptions['preClose'] | undefined
  /** Whether the user gave the option at all. */
  given: boolean
}

/** The default of every plugin option that has one. */
export const DEFAULTS = {
  maxPayload: 64 * 1024,
  heartbeat: { interval: 30_000, timeout: 10_000 },
  upgradeTimeout: 10_000,
  redactQueryParams: ['token', 'access_token'],
  maxQueuedMessages: 1024,
  closeTimeout: 2_000,
  maxBufferedBytes: 1024 * 1024,
  slowConsumer: 'close',
  maxConnections: 0,
  maxConnectionsPerUser: 0,
  maxConnectionsPerIp: 0,
  maxRoomsPerConnection: 128,
  maxRoomNameLength: 255,
  ackTimeout: 10_000,
  maxPendingAcks: 64,
  perMessageDeflate: false,
  redisPrefix: 'fastify-realtime',
  redisSharded: false,
  publishTimeout: 2_000,
  redisReadyTimeout: 10_000,
  redisHealthCheckInterval: 5_000,
  presenceTtl: 30_000
} as const

/** Defaults of the route option `recovery` (docs/recovery.md). */
export const RECOVERY_DEFAULTS = { window: 120_000, maxEvents: 10_000 } as const
