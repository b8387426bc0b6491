import type { Connection } from './connection.js'
import { kAlive } from './symbols.js'

type AnyConnection = Connection<any, any>

/**
 * One timer for every connection that shares a heartbeat setting. It
 * alternates two phases: ping everyone (marking them not alive), then, after
 * `timeout`, terminate those that sent nothing back (a pong or any frame).
 *
 * A blocked event loop delays the check, and the pongs that arrived
 * meanwhile are still unread when the late timer fires. So a check that runs
 * late gives everyone one more `timeout` to be read before it judges: a
 * busy server keeps its healthy clients, and dead ones go a round later.
 */
export class HeartbeatGroup {
  readonly interval: number
  readonly timeout: number
  readonly #members = new Set<AnyConnection>()
  readonly #terminated: (conn: AnyConnection) => void
  #timer: NodeJS.Timeout | undefined
  #dueAt = 0
  #checking = false
  #graced = false

  constructor (interval: number, timeout: number, terminated: (conn: AnyConnection) => void = noop) {
    this.interval = interval
    this.timeout = timeout
    this.#terminated = terminated
  }

  /** Number of connections under watch. */
  get size (): number {
    return this.#members.size
  }

  add (conn: AnyConnection): void {
    this.#members.add(conn)
    if (this.#timer === undefined) this.#schedule(this.interval, false)
  }

  delete (conn: AnyConnection): void {
    this.#members.delete(conn)
    if (this.#members.size === 0) this.stop()
  }

  /** Clears the timer; `add` starts it again. */
  stop (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #schedule (delay: number, checking: boolean): void {
    this.#checking = checking
    this.#dueAt = Date.now() + delay
    this.#timer = setTimeout(this.#tick, delay)
    this.#timer.unref()
  }

  readonly #tick = (): void => {
    if (!this.#checking) {
      for (const conn of this.#members) {
        conn[kAlive] = false
        conn.socket.ping()
      }
      this.#schedule(this.timeout, true)
      return
    }
    const lag = Date.now() - this.#dueAt
    if (lag > this.timeout / 2 && !this.#graced) {
      this.#graced = true
      this.#schedule(this.timeout, true)
      return
    }
    this.#graced = false
    for (const conn of this.#members) {
      if (!conn[kAlive]) {
        this.#terminated(conn)
        conn.terminate()
      }
    }
    this.#schedule(Math.max(this.interval - this.timeout, 1), false)
  }
}

/** The heartbeat groups of a plugin instance, one per distinct setting. */
export class Heartbeats {
  readonly #groups = new Map<string, HeartbeatGroup>()
  readonly #terminated: (conn: AnyConnection) => void

  /** `terminated` hears of every connection a group drops for not answering. */
  constructor (terminated: (conn: AnyConnection) => void = noop) {
    this.#terminated = terminated
  }

  /** The group for a setting, created on first use. */
  group (interval: number, timeout: number): HeartbeatGroup {
    const key = `${interval}:${timeout}`
    let group = this.#groups.get(key)
    if (group === undefined) {
      group = new HeartbeatGroup(interval, timeout, this.#terminated)
      this.#groups.set(key, group)
    }
    return group
  }

  /** Number of timers running, for leak checks. */
  get running (): number {
    let count = 0
    for (const group of this.#groups.values()) if (group.size > 0) count++
    return count
  }

  stop (): void {
    for (const group of this.#groups.values()) group.stop()
  }
}

function noop (): void {}
