import { FST_RT_INVALID_OPTION } from './errors.js'

/** An inbound message budget: `max` messages per `interval` ms, refilled continuously. */
export interface RateLimitOptions {
  /** Messages allowed per interval (also the burst size). */
  max: number
  /**
   * Milliseconds the budget refills over.
   * @default 1000
   */
  interval?: number
  /**
   * Over-budget messages in a row that close the connection with 1008; 0 never closes.
   * @default 50
   */
  maxViolations?: number
}

export interface ResolvedRateLimit {
  max: number
  interval: number
  maxViolations: number
}

/** Validates a rate limit setting; `false` or undefined turns it off. */
export function resolveRateLimit (name: string, value: RateLimitOptions | false | undefined): ResolvedRateLimit | undefined {
  if (value === undefined || value === false) return undefined
  if (value === null || typeof value !== 'object' || !Number.isSafeInteger(value.max) || value.max <= 0) {
    throw new FST_RT_INVALID_OPTION(`${name}.max`, 'a positive integer')
  }
  const interval = value.interval ?? 1000
  const maxViolations = value.maxViolations ?? 50
  if (!Number.isSafeInteger(interval) || interval <= 0) throw new FST_RT_INVALID_OPTION(`${name}.interval`, 'a positive integer')
  if (!Number.isSafeInteger(maxViolations) || maxViolations < 0) throw new FST_RT_INVALID_OPTION(`${name}.maxViolations`, 'a non-negative integer')
  return { max: value.max, interval, maxViolations }
}

/**
 * A token bucket: starts full with `max` tokens and refills at max/interval
 * per millisecond, never above `max`. Two numbers per connection.
 */
export class TokenBucket {
  #tokens: number
  #refilledAt: number

  constructor (readonly limit: ResolvedRateLimit, now: number) {
    this.#tokens = limit.max
    this.#refilledAt = now
  }

  /** Takes one token; false when the budget is spent. */
  take (now: number): boolean {
    const elapsed = now - this.#refilledAt
    if (elapsed > 0) {
      this.#tokens = Math.min(this.limit.max, this.#tokens + elapsed * this.limit.max / this.limit.interval)
      this.#refilledAt = now
    }
    if (this.#tokens < 1) return false
    this.#tokens -= 1
    return true
  }
}
