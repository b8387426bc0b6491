import { shouldReconnect, type ReconnectOptions, type ResolvedReconnect } from './reconnect.js'
import type { PingOptions } from './liveness.js'
import type { Restorer } from './replay.js'
import type { AnyRoute, MessageName, RouteShape, WebSocketConstructor } from './types.js'

export interface ClientOptions<R extends RouteShape = AnyRoute> {
  /** The WebSocket class: the global `WebSocket` by default (browsers, Node 22+); pass `ws`'s on Node 20. */
  WebSocket?: WebSocketConstructor
  /** Subprotocols for the WebSocket constructor. */
  protocols?: string | string[]
  /**
   * Added to the URL as `?token=` (see `tokenParam`). A function is called
   * for every attempt, so a reconnect carries a fresh token; if it throws,
   * the attempt fails (reported on `error` as HOOK_FAILED) and is retried.
   */
  token?: string | (() => string | undefined | null | Promise<string | undefined | null>)
  /** @default 'token' */
  tokenParam?: string
  /** Milliseconds a request waits for its answer (queued time included). @default 10000 */
  requestTimeout?: number
  /** Milliseconds an attempt may take to open before it is dropped and retried. @default 10000 */
  connectTimeout?: number
  /** @default { initialDelay: 500, maxDelay: 30000, maxAttempts: Infinity } */
  reconnect?: ReconnectOptions | false
  /** @default { interval: 25000, timeout: 10000 } */
  ping?: PingOptions | false
  /**
   * Sends and requests kept while not open, sent in order once open. When
   * full, `send()` returns false and `request()` rejects with QUEUE_FULL.
   * @default 1000
   */
  maxQueued?: number
  /**
   * Message types whose sends are replayed after a reconnect, each mapped to
   * the type that undoes it: a `join` that was sent (or, as a request,
   * answered) is sent again on every reconnect until a `leave` with the same
   * `data` goes out. `false`: replay nothing.
   * @default { join: 'leave' }
   */
  replay?: Partial<Record<MessageName<R>, MessageName<R> | null>> | false
  /** Runs after every reconnect, after the replay and before the offline queue is sent. */
  onReconnect?: (restorer: Restorer<R>) => void | Promise<void>
}

/** Every option with its default applied, checked once when the client is created. */
export interface ResolvedOptions<R extends RouteShape = AnyRoute> {
  url: string
  WebSocket: WebSocketConstructor
  protocols: string | string[] | undefined
  token: ClientOptions<R>['token']
  tokenParam: string
  requestTimeout: number
  connectTimeout: number
  maxQueued: number
  reconnect: ResolvedReconnect | false
  ping: Required<PingOptions> | false
  /** Replayed type -> the type that undoes it (null: nothing does). */
  replay: Record<string, string | null>
  onReconnect: ClientOptions<R>['onReconnect']
}

/**
 * Applies the defaults and checks every option: a mistake throws a
 * TypeError now rather than being retried forever.
 */
export function resolveOptions<R extends RouteShape> (url: string | URL, options: ClientOptions<R>): ResolvedOptions<R> {
  const WebSocketClass = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
  if (typeof WebSocketClass !== 'function') {
    throw new TypeError('No WebSocket class: pass options.WebSocket (e.g. the ws package\'s) on Node 20')
  }
  const resolved: ResolvedOptions<R> = {
    url: webSocketUrl(url),
    WebSocket: WebSocketClass,
    protocols: options.protocols,
    token: options.token,
    tokenParam: options.tokenParam ?? 'token',
    requestTimeout: options.requestTimeout ?? 10_000,
    connectTimeout: options.connectTimeout ?? 10_000,
    maxQueued: options.maxQueued ?? 1000,
    reconnect: resolveReconnect(options.reconnect),
    ping: resolvePing(options.ping),
    replay: options.replay === false ? {} : (options.replay as Record<string, string | null> | undefined) ?? { join: 'leave' },
    onReconnect: options.onReconnect
  }
  positive('requestTimeout', resolved.requestTimeout)
  positive('connectTimeout', resolved.connectTimeout)
  positive('maxQueued', resolved.maxQueued, true)
  return resolved
}

export function resolveReconnect (options: ReconnectOptions | false | undefined): ResolvedReconnect | false {
  if (options === false) return false
  const resolved = {
    initialDelay: options?.initialDelay ?? 500,
    maxDelay: options?.maxDelay ?? 30_000,
    maxAttempts: options?.maxAttempts ?? Infinity,
    shouldReconnect: options?.shouldReconnect ?? shouldReconnect
  }
  positive('reconnect.initialDelay', resolved.initialDelay, true)
  positive('reconnect.maxDelay', resolved.maxDelay, true)
  positive('reconnect.maxAttempts', resolved.maxAttempts, true)
  if (typeof resolved.shouldReconnect !== 'function') throw new TypeError('reconnect.shouldReconnect must be a function')
  return resolved
}

function resolvePing (options: PingOptions | false | undefined): Required<PingOptions> | false {
  if (options === false) return false
  const resolved = { interval: options?.interval ?? 25_000, timeout: options?.timeout ?? 10_000 }
  positive('ping.interval', resolved.interval)
  positive('ping.timeout', resolved.timeout)
  return resolved
}

/** Throws a TypeError unless `value` is a number above 0 (or 0 where allowed). */
export function positive (name: string, value: unknown, zeroAllowed = false): void {
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0 || (!zeroAllowed && value === 0)) {
    throw new TypeError(`${name} must be a ${zeroAllowed ? 'non-negative' : 'positive'} number`)
  }
}

/**
 * An absolute ws:// or wss:// URL. In a page, a path (`/chat`) is resolved
 * against the page's address and http(s) becomes ws(s).
 */
function webSocketUrl (url: string | URL): string {
  const base = (globalThis as { location?: { href?: string } }).location?.href
  const resolved = new URL(String(url), base)
  if (resolved.protocol === 'http:') resolved.protocol = 'ws:'
  else if (resolved.protocol === 'https:') resolved.protocol = 'wss:'
  if (resolved.protocol !== 'ws:' && resolved.protocol !== 'wss:') throw new TypeError(`Not a WebSocket URL: ${String(url)}`)
  return resolved.href
}
