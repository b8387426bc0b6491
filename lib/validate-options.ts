import type { Broker } from './broker.js'
import type { HistoryOptions } from './history.js'
import { FST_RT_INVALID_OPTION } from './errors.js'
import {
  DEFAULTS, RECOVERY_DEFAULTS, type HeartbeatOptions, type RealtimeOptions, type ResolvedAsyncApiOptions, type ResolvedOptions, type ResolvedWebsocketOptions
} from './options.js'
import { resolveRateLimit } from './rate-limit.js'
import type { RedisConnection } from './redis/connection.js'

/** Options without a default, known all the same. */
const OPTIONS_WITHOUT_DEFAULT = ['allowedOrigins', 'userId', 'broker', 'redis', 'websocket', 'asyncapi']

/** Every plugin option; anything else is a typo that would otherwise be ignored. */
const KNOWN_OPTIONS: ReadonlySet<string> = new Set([...Object.keys(DEFAULTS), ...OPTIONS_WITHOUT_DEFAULT])

/** Validates the plugin options and fills in defaults; throws FST_RT_INVALID_OPTION. */
export function resolveOptions (opts: RealtimeOptions = {}): ResolvedOptions {
  if (opts === null || typeof opts !== 'object') throw new FST_RT_INVALID_OPTION('options', 'an object')
  for (const key of Object.keys(opts)) {
    if (!KNOWN_OPTIONS.has(key)) throw new FST_RT_INVALID_OPTION(key, 'a known option (see docs/options.md)')
  }
  const websocket = resolveWebsocket(opts.websocket)
  const serverOptions = (opts.websocket?.options ?? {}) as { maxPayload?: number, perMessageDeflate?: unknown }
  // One ws server serves every route: one frame limit, one deflate setting, given once.
  for (const name of ['maxPayload', 'perMessageDeflate'] as const) {
    if (opts[name] !== undefined && serverOptions[name] !== undefined) {
      throw new FST_RT_INVALID_OPTION(`websocket.options.${name}`, `left out when '${name}' is set (one ws server serves every route)`)
    }
  }
  return {
    maxPayload: positiveInteger(serverOptions.maxPayload === undefined ? 'maxPayload' : 'websocket.options.maxPayload',
      opts.maxPayload ?? serverOptions.maxPayload ?? DEFAULTS.maxPayload),
    heartbeat: resolveHeartbeat('heartbeat', opts.heartbeat, DEFAULTS.heartbeat),
    upgradeTimeout: nonNegativeInteger('upgradeTimeout', opts.upgradeTimeout ?? DEFAULTS.upgradeTimeout),
    allowedOrigins: resolveOrigins('allowedOrigins', opts.allowedOrigins) ?? 'same-host',
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
    ackTimeout: ackTimeout('ackTimeout', opts.ackTimeout ?? DEFAULTS.ackTimeout),
    maxPendingAcks: positiveInteger('maxPendingAcks', opts.maxPendingAcks ?? DEFAULTS.maxPendingAcks),
    perMessageDeflate: resolveDeflate(opts.perMessageDeflate ?? serverOptions.perMessageDeflate ?? DEFAULTS.perMessageDeflate),
    redis: resolveRedis(opts.redis),
    redisPrefix: stringList('redisPrefix', [opts.redisPrefix ?? DEFAULTS.redisPrefix])[0]!,
    redisSharded: boolean('redisSharded', opts.redisSharded ?? DEFAULTS.redisSharded),
    publishTimeout: positiveInteger('publishTimeout', opts.publishTimeout ?? DEFAULTS.publishTimeout),
    redisReadyTimeout: positiveInteger('redisReadyTimeout', opts.redisReadyTimeout ?? DEFAULTS.redisReadyTimeout),
    redisHealthCheckInterval: nonNegativeInteger('redisHealthCheckInterval', opts.redisHealthCheckInterval ?? DEFAULTS.redisHealthCheckInterval),
    presenceTtl: positiveInteger('presenceTtl', opts.presenceTtl ?? DEFAULTS.presenceTtl),
    websocket,
    asyncapi: resolveAsyncApi(opts.asyncapi)
  }
}

/** The `asyncapi` option: where the document is served (if anywhere), and its `info`. */
function resolveAsyncApi (value: unknown): ResolvedAsyncApiOptions {
  const resolved: ResolvedAsyncApiOptions = { path: undefined, title: 'WebSocket API', version: '1.0.0', description: undefined }
  if (value === undefined) return resolved
  if (value === null || typeof value !== 'object') throw new FST_RT_INVALID_OPTION('asyncapi', 'an object ({ path, info })')
  const { path, info } = value as { path?: unknown, info?: unknown }
  if (path !== undefined && (typeof path !== 'string' || !path.startsWith('/'))) {
    throw new FST_RT_INVALID_OPTION('asyncapi.path', "a string starting with '/'")
  }
  resolved.path = path
  if (info === undefined) return resolved
  if (info === null || typeof info !== 'object') throw new FST_RT_INVALID_OPTION('asyncapi.info', 'an object ({ title, version, description })')
  for (const key of ['title', 'version', 'description'] as const) {
    const field = (info as Record<string, unknown>)[key]
    if (field === undefined) continue
    if (typeof field !== 'string' || field === '') throw new FST_RT_INVALID_OPTION(`asyncapi.info.${key}`, 'a non-empty string')
    resolved[key] = field
  }
  return resolved
}

/** The `ws` server options the plugin honours, and how each is checked (maxPayload and perMessageDeflate: above). */
const WS_SERVER_OPTIONS: Record<string, (name: string, value: unknown) => unknown> = {
  maxPayload: () => undefined,
  perMessageDeflate: () => undefined,
  clientTracking: boolean,
  skipUTF8Validation: boolean,
  allowSynchronousEvents: boolean,
  autoPong: boolean,
  handleProtocols: (name, value) => resolveFunction(name, value, undefined),
  verifyClient: (name, value) => resolveFunction(name, value, undefined),
  WebSocket: (name, value) => resolveFunction(name, value, undefined),
  closeTimeout: nonNegativeInteger,
  maxBufferedChunks: nonNegativeInteger,
  maxFragments: nonNegativeInteger,
  maxPendingAutoPongs: nonNegativeInteger
}

/**
 * Validates @fastify/websocket's options. What the plugin cannot honour is
 * refused: `connectionOptions` (@fastify/websocket 11 has no stream API) and
 * the ws options that would take the server away from Fastify's
 * (`noServer`, `server`, `port`, `host`, `backlog`, `path`).
 */
export function resolveWebsocket (value: unknown): ResolvedWebsocketOptions {
  const resolved: ResolvedWebsocketOptions = { serverOptions: {}, errorHandler: undefined, preClose: undefined, given: value !== undefined }
  if (value === undefined) return resolved
  if (value === null || typeof value !== 'object') throw new FST_RT_INVALID_OPTION('websocket', 'an object')
  const { options, errorHandler, preClose, ...rest } = value as Record<string, unknown>
  const [unknown] = Object.keys(rest)
  if (unknown !== undefined) {
    const expected = unknown === 'connectionOptions'
      ? 'left out: @fastify/websocket 11 has no stream API (use ws.createWebSocketStream in the handler)'
      : "left out: only 'options', 'errorHandler' and 'preClose' are @fastify/websocket options"
    throw new FST_RT_INVALID_OPTION(`websocket.${unknown}`, expected)
  }
  resolved.errorHandler = resolveFunction('websocket.errorHandler', errorHandler as ResolvedWebsocketOptions['errorHandler'], undefined)
  resolved.preClose = resolveFunction('websocket.preClose', preClose as ResolvedWebsocketOptions['preClose'], undefined)
  if (options === undefined) return resolved
  if (options === null || typeof options !== 'object') throw new FST_RT_INVALID_OPTION('websocket.options', 'an object of ws server options')
  const serverOptions: Record<string, unknown> = {}
  for (const [key, option] of Object.entries(options)) {
    const check = Object.hasOwn(WS_SERVER_OPTIONS, key) ? WS_SERVER_OPTIONS[key] : undefined
    if (check === undefined) {
      throw new FST_RT_INVALID_OPTION(`websocket.options.${key}`,
        `left out: the plugin serves upgrades on Fastify's server, and honours only ${Object.keys(WS_SERVER_OPTIONS).join(', ')}`)
    }
    if (option === undefined || key === 'maxPayload' || key === 'perMessageDeflate') continue
    check(`websocket.options.${key}`, option)
    serverOptions[key] = option
  }
  resolved.serverOptions = serverOptions
  return resolved
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

/** Resolves a route's `recovery` option; undefined when off. */
export function resolveRecovery (name: string, value: unknown): HistoryOptions | undefined {
  if (value === undefined || value === false) return undefined
  if (value === true) return { window: RECOVERY_DEFAULTS.window, maxEvents: RECOVERY_DEFAULTS.maxEvents }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new FST_RT_INVALID_OPTION(name, 'a boolean or { window, maxEvents }')
  const { window, maxEvents, ...rest } = value as { window?: unknown, maxEvents?: unknown }
  const unknown = Object.keys(rest)[0]
  if (unknown !== undefined) throw new FST_RT_INVALID_OPTION(`${name}.${unknown}`, 'left out: recovery takes window and maxEvents')
  return {
    window: positiveInteger(`${name}.window`, window ?? RECOVERY_DEFAULTS.window),
    maxEvents: positiveInteger(`${name}.maxEvents`, maxEvents ?? RECOVERY_DEFAULTS.maxEvents)
  }
}

/**
 * Which browser origins may open a WebSocket: `'same-host'` (the Origin's
 * host is the request's own), `'*'` (any), or an exact allowlist of
 * `scheme://host[:port]` strings.
 */
export type OriginPolicy = 'same-host' | '*' | ReadonlySet<string>

/** Validates `allowedOrigins`: `'*'`, or a list normalised to `scheme://host[:port]` strings; undefined stays undefined. */
export function resolveOrigins (name: string, value: readonly string[] | '*' | undefined): OriginPolicy | undefined {
  if (value === undefined) return undefined
  if (value === '*') return '*'
  if (!Array.isArray(value)) throw new FST_RT_INVALID_OPTION(name, "'*' or a list of origins like https://app.example.com")
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

/** setTimeout cannot wait longer. */
const MAX_TIMEOUT = 2 ** 31 - 1

/** Checks an ack timeout (`ackTimeout`, or a call's `timeout`): a positive integer of milliseconds that setTimeout can wait. */
export function ackTimeout (name: string, value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) <= 0 || (value as number) > MAX_TIMEOUT) {
    throw new FST_RT_INVALID_OPTION(name, `a positive integer of milliseconds, at most ${MAX_TIMEOUT}`)
  }
  return value as number
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
