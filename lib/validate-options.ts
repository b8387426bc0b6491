import type { Broker } from './broker.js'
import { FST_RT_INVALID_OPTION } from './errors.js'
import { DEFAULTS, type HeartbeatOptions, type RealtimeOptions, type ResolvedOptions } from './options.js'
import { resolveRateLimit } from './rate-limit.js'
import type { RedisConnection } from './redis/connection.js'

/** Options without a default, known all the same. */
const OPTIONS_WITHOUT_DEFAULT = ['allowedOrigins', 'userId', 'broker', 'redis']

/** Every plugin option; anything else is a typo that would otherwise be ignored. */
const KNOWN_OPTIONS: ReadonlySet<string> = new Set([...Object.keys(DEFAULTS), ...OPTIONS_WITHOUT_DEFAULT])

/** Validates the plugin options and fills in defaults; throws FST_RT_INVALID_OPTION. */
export function resolveOptions (opts: RealtimeOptions = {}): ResolvedOptions {
  if (opts === null || typeof opts !== 'object') throw new FST_RT_INVALID_OPTION('options', 'an object')
  for (const key of Object.keys(opts)) {
    if (!KNOWN_OPTIONS.has(key)) throw new FST_RT_INVALID_OPTION(key, 'a known option (see docs/options.md)')
  }
  return {
    maxPayload: positiveInteger('maxPayload', opts.maxPayload ?? DEFAULTS.maxPayload),
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
