/** App-level liveness check; `ping: false` turns it off. */
export interface PingOptions {
  /**
   * After this many milliseconds without any frame from the server, send
   * `{"type":"ping"}`. A dead TCP connection (a sleeping laptop, a dropped
   * NAT entry) can look open to a browser for minutes; this notices it.
   * @default 25000
   */
  interval?: number
  /** Milliseconds to wait for any frame after a ping before the connection is given up (and retried). @default 10000 */
  timeout?: number
}

/**
 * Watches one connection: every `interval` it checks when the server was
 * last heard; if not within the interval, it pings, and if nothing at all
 * comes back within `timeout`, declares the connection dead. Any frame
 * counts as a sign of life, so a busy connection never pings.
 */
export class Liveness {
  readonly #interval: number
  readonly #timeout: number
  readonly #ping: () => void
  readonly #dead: () => void
  #lastSeen = 0
  #pingedAt = 0
  #ticker: ReturnType<typeof setInterval> | undefined
  #deadline: ReturnType<typeof setTimeout> | undefined

  constructor (options: Required<PingOptions>, ping: () => void, dead: () => void) {
    this.#interval = options.interval
    this.#timeout = options.timeout
    this.#ping = ping
    this.#dead = dead
  }

  start (): void {
    this.#lastSeen = Date.now()
    this.#ticker = setInterval(() => this.#tick(), this.#interval)
  }

  /** A frame arrived. */
  seen (): void {
    this.#lastSeen = Date.now()
  }

  stop (): void {
    clearInterval(this.#ticker)
    clearTimeout(this.#deadline)
    this.#ticker = undefined
    this.#deadline = undefined
  }

  #tick (): void {
    if (this.#deadline !== undefined || Date.now() - this.#lastSeen < this.#interval) return
    this.#pingedAt = Date.now()
    this.#deadline = setTimeout(() => {
      this.#deadline = undefined
      if (this.#lastSeen < this.#pingedAt) this.#dead()
    }, this.#timeout)
    this.#ping()
  }
}
