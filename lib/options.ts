import type { Broker } from './broker.js'
import { FST_RT_INVALID_OPTION } from './errors.js'
import type { RedisConnection } from './redis-broker.js'
import { resolveRateLimit, type RateLimitOptions, type ResolvedRateLimit } from './rate-limit.js'

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
   * Origins (`scheme://host[:port]`, matched exactly) allowed to open a
   * WebSocket; any other Origin gets HTTP 403 before the upgrade. Requests
   * without an Origin header (non-browser clients) are let through.
   * `undefined` allows every origin.
   * @default undefined
   */
  allowedOrigins?: readonly string[]
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
   * their own): over it a message is answered with RATE_LIMITED; a run of
   * `maxViolations` closes the connection with 1008.
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
  redis?: RedisConnection
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
}

/** Options after defaults and validation. */
export interface ResolvedOptions {
  maxPayload: number
  heartbeat: Required<HeartbeatOptions> | false
  upgradeTimeout: number
  allowedOrigins: ReadonlySet<string> | undefined
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
  perMessageDeflate: boolean | Record<string, unknown>
  redis: RedisConnection | undefined
  redisPrefix: string
  redisSharded: boolean
  publishTimeout: number
  redisReadyTimeout: number
  redisHealthCheckInterval: number
  presenceTtl: number
}

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
  perMessageDeflate: false,
  redisPrefix: 'fastify-realtime',
  redisSharded: false,
  publishTimeout: 2_000,
  redisReadyTimeout: 10_000,
  redisHealthCheckInterval: 5_000,
  presenceTtl: 30_000
} as const

/** Validates the plugin options and fills in defaults; throws FST_RT_INVALID_OPTION. */
export function resolveOptions (opts: RealtimeOptions = {}): ResolvedOptions {
  if (opts === null || typeof opts !== 'object') throw new FST_RT_INVALID_OPTION('options', 'an object')
  return {
    maxPayload: positiveInteger('maxPayload', opts.maxPayload ?? DEFAULTS.maxPayload),
    heartbeat: resolveHeartbeat('heartbeat', opts.heartbeat, DEFAULTS.heartbeat),
    upgradeTimeout: nonNegativeInteger('upgradeTimeout', opts.upgradeTimeout ?? DEFAULTS.upgradeTimeout),
    allowedOrigins: resolveOrigins('allowedOrigins', opts.allowedOrigins),
    redactQueryParams: stringList('redactQueryParams', opts.redactQueryParams ?? DEFAULTS.redactQueryParams),
    maxQueuedMessages: positiveInteger('maxQueuedMessages', opts.maxQueuedMessages ?? DEFAULTS.maxQueuedMessages),
    closeTimeout: nonNegativeInteger('closeTimeout', opts.closeTimeout ?? DEFAULTS.closeTimeout),
    userId: resolveFunction('userId', opts.userId, defaultUserId),
    broker: resolveBroker(opts.broker),
    maxBufferedBytes: positiveInteger('maxBufferedBytes', opts.maxBufferedBytes ?? DEFAULTS.maxBufferedBytes),
    slowConsumer: resolveSlowConsumer('slowConsumer', opts.slowConsumer ?? DEFAULTS.slowConsumer),
    rateLimit: resolveRateLimit('rateLimit', opts.rateLimit),
    maxConnections: nonNegativeInteger('maxConnections', opts.maxConnections ?? DEFAULTS.maxConnections),
    maxConnectionsPerUser: nonNegativeInteger('maxConnectionsPerUser', opts.maxConnectionsPerUser ?? DEFAULTS.maxConnectionsPerUser),
    maxConnectionsPerIp: nonNegativeInteger('maxConnectionsPerIp', opts.maxConnectionsPerIp ?? DEFAULTS.maxConnectionsPerIp),
    maxRoomsPerConnection: positiveInteger('maxRoomsPerConnection', opts.maxRoomsPerConnection ?? DEFAULTS.maxRoomsPerConnection),
    maxRoomNameLength: positiveInteger('maxRoomNameLength', opts.maxRoomNameLength ?? DEFAULTS.maxRoomNameLength),
    perMessageDeflate: resolveDeflate(opts.perMessageDeflate ?? DEFAULTS.perMessageDeflate),
    redis: resolveRedis(opts.redis),
    redisPrefix: stringList('redisPrefix', [opts.redisPrefix ?? DEFAULTS.redisPrefix])[0]!,
    redisSharded: boolean('redisSharded', opts.redisSharded ?? DEFAULTS.redisSharded),
    publishTimeout: positiveInteger('publishTimeout', opts.publishTimeout ?? DEFAULTS.publishTimeout),
    redisReadyTimeout: positiveInteger('redisReadyTimeout', opts.redisReadyTimeout ?? DEFAULTS.redisReadyTimeout),
    redisHealthCheckInterval: nonNegativeInteger('redisHealthCheckInterval', opts.redisHealthCheckInterval ?? DEFAULTS.redisHealthCheckInterval),
    presenceTtl: positiveInteger('presenceTtl', opts.presenceTtl ?? DEFAULTS.presenceTtl)
  }
}

/** Validates a slow-consumer policy. */
export function resolveSlowConsumer (name: string, value: unknown): 'close' | 'drop' {
  if (value !== 'close' && value !== 'drop') throw new FST_RT_INVALID_OPTION(name, "'close' or 'drop'")
  return value
}

function resolveDeflate (value: unknown): boolean | Record<string, unknown> {
  if (typeof value !== 'boolean' && (value === null || typeof value !== 'object')) {
    throw new FST_RT_INVALID_OPTION('perMessageDeflate', 'a boolean or ws permessage-deflate options')
  }
  return value as boolean | Record<string, unknown>
}

function resolveRedis (redis: RedisConnection | undefined): RedisConnection | undefined {
  if (redis === undefined) return undefined
  if (typeof redis === 'string') {
    if (!/^rediss?:\/\//.test(redis)) throw new FST_RT_INVALID_OPTION('redis', 'an ioredis client, a redis:// URL or ioredis options')
    return redis
  }
  if (redis === null || typeof redis !== 'object') {
    throw new FST_RT_INVALID_OPTION('redis', 'an ioredis client, a redis:// URL or ioredis options')
  }
  return redis
}

function boolean (name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new FST_RT_INVALID_OPTION(name, 'a boolean')
  return value
}

/** Resolves a heartbeat setting against the one it overrides. */
export function resolveHeartbeat (name: string, value: HeartbeatOptions | false | undefined,
  fallback: Required<HeartbeatOptions> | false): Required<HeartbeatOptions> | false {
  if (value === false) return false
  if (value === undefined) return fallback
  if (value === null || typeof value !== 'object') throw new FST_RT_INVALID_OPTION(name, 'an object or false')
  const base = fallback === false ? DEFAULTS.heartbeat : fallback
  const interval = positiveInteger(`${name}.interval`, value.interval ?? base.interval)
  const timeout = positiveInteger(`${name}.timeout`, value.timeout ?? Math.min(base.timeout, interval))
  if (timeout > interval) throw new FST_RT_INVALID_OPTION(`${name}.timeout`, `at most ${name}.interval`)
  return { interval, timeout }
}

/** Normalises an origin allowlist to `scheme://host[:port]` strings. */
export function resolveOrigins (name: string, value: readonly string[] | undefined): ReadonlySet<string> | undefined {
  if (value === undefined) return undefined
  return new Set(stringList(name, value).map((origin) => {
    const normalised = normaliseOrigin(origin)
    if (normalised === undefined) throw new FST_RT_INVALID_OPTION(name, 'a list of origins like https://app.example.com')
    return normalised
  }))
}

/** `scheme://host[:port]` in canonical form, or undefined for anything that is not an origin. */
export function normaliseOrigin (origin: string): string | undefined {
  try {
    const url = new URL(origin)
    if (url.origin === 'null' || url.pathname.length > 1 || url.search !== '' || url.username !== '') return undefined
    return url.origin
  } catch {
    return undefined
  }
}

function defaultUserId (user: unknown): string | undefined {
  if (user === null || typeof user !== 'object') return undefined
  const id = (user as { id?: unknown }).id
  return typeof id === 'string' || typeof id === 'number' ? String(id) : undefined
}

function resolveBroker (broker: Broker | undefined): Broker | undefined {
  if (broker === undefined) return undefined
  if (broker === null || typeof broker !== 'object' || typeof broker.publish !== 'function') {
    throw new FST_RT_INVALID_OPTION('broker', 'a Broker')
  }
  return broker
}

function resolveFunction<F> (name: string, value: F | undefined, fallback: F): F {
  if (value === undefined) return fallback
  if (typeof value !== 'function') throw new FST_RT_INVALID_OPTION(name, 'a function')
  return value
}

export function positiveInteger (name: string, value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) <= 0) throw new FST_RT_INVALID_OPTION(name, 'a positive integer')
  return value as number
}

function nonNegativeInteger (name: string, value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) throw new FST_RT_INVALID_OPTION(name, 'a non-negative integer')
  return value as number
}

function stringList (name: string, value: unknown): readonly string[] {
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string' && item.length > 0)) {
    throw new FST_RT_INVALID_OPTION(name, 'an array of non-empty strings')
  }
  return value
}
