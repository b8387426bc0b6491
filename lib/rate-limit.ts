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
   * Refusals in a row by this budget that close the connection with 1008; 0
   * never closes. A violation is a message this budget refuses (answered
   * with RATE_LIMITED). Each budget counts its own run: the connection's
   * (route or plugin `rateLimit`) and each message type's. A message the
   * budget accepts ends its run; accepted or refused messages of other
   * budgets do not touch it. A message the connection's budget refuses never
   * reaches its type's budget.
   * @default 50
   */
  maxViolations?: number
}

/** What a budget said to one message: taken, refused, or refused with its run of refusals at `maxViolations`. */
export type RateVerdict = 'taken' | 'refused' | 'exhausted'

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
 * per millisecond, never above `max`. Three numbers per budget and connection.
 */
export class TokenBucket {
  #tokens: number
  #refilledAt: number
  #refusedInRow = 0

  constructor (readonly limit: ResolvedRateLimit, now: number) {
    this.#tokens = limit.max
    this.#refilledAt = now
  }

  /** Takes one token; false when the budget is spent. An accepted message ends the run of refusals. */
  take (now: number): boolean {
    const elapsed = now - this.#refilledAt
    if (elapsed > 0) {
      this.#tokens = Math.min(this.limit.max, this.#tokens + elapsed * this.limit.max / this.limit.interval)
      this.#refilledAt = now
    }
    if (this.#tokens < 1) {
      this.#refusedInRow++
      return false
    }
    this.#tokens -= 1
    this.#refusedInRow = 0
    return true
  }

  /** Whether this budget's run of refusals has reached `maxViolations` (never when it is 0). */
  get exhausted (): boolean {
    return this.limit.maxViolations > 0 && this.#refusedInRow >= this.limit.maxViolations
  }
}
