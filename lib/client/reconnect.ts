import { closeCodeAllowsReconnect } from '../protocol/close-codes.js'
import type { CloseInfo } from './types.js'

/** How the client reconnects; `reconnect: false` turns it off. */
export interface ReconnectOptions {
  /**
   * The cap of the first retry's delay in milliseconds; each later retry
   * doubles the cap, up to `maxDelay`. The delay itself is drawn uniformly
   * between 0 and the cap ("full jitter"), so a thousand clients dropped by
   * one restart do not all come back in the same instant.
   * @default 500
   */
  initialDelay?: number
  /** @default 30000 */
  maxDelay?: number
  /** Consecutive failed attempts before the client gives up and closes. @default Infinity */
  maxAttempts?: number
  /** Decides, for each lost connection, whether to try again. @default shouldReconnect */
  shouldReconnect?: (close: CloseInfo) => boolean
}

export interface ResolvedReconnect {
  initialDelay: number
  maxDelay: number
  maxAttempts: number
  shouldReconnect: (close: CloseInfo) => boolean
}

/**
 * The default policy, following docs/protocol.md: reconnect after shutdown
 * (1001), heartbeat loss or network failure (1006), a server error (1011),
 * a policy close (1008, after the backoff's pause) and the application's
 * 4000-4399 codes; not after a deliberate 1000, a client error (1002, 1003,
 * 1007, 1009, 1010) or the application's 4400-4999 codes (session expired,
 * disconnected by the server). A refused upgrade whose HTTP status is known
 * (`ws` tells it, browsers do not) is final for a 4xx other than 408 and 429.
 */
export function shouldReconnect (close: CloseInfo): boolean {
  if (close.status !== undefined) return close.status >= 500 || close.status === 408 || close.status === 429
  return closeCodeAllowsReconnect(close.code)
}

/** The delay before retry number `attempt` (0 for the first retry). */
export function backoffDelay (options: ResolvedReconnect, attempt: number, random: () => number = Math.random): number {
  const cap = Math.min(options.maxDelay, options.initialDelay * 2 ** Math.min(attempt, 30))
  return Math.floor(random() * cap)
}
