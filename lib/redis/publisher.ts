import { performance } from 'node:perf_hooks'
import type { Writable } from 'node:stream'
import { FST_RT_BROKER_UNAVAILABLE } from '../errors.js'
import { RedisMetrics } from './metrics.js'
import { openClient, ready, quit, type RedisClient, type RedisConnection } from './connection.js'

type Client = RedisClient

/** Characters of messages a batch holds before it is written out, without waiting for the end of the tick. */
const FLUSH_AT = 64 * 1024

/** Outcome counters of publishes. */
export interface PublishCounters {
  published: number
  publishedToNobody: number
  publishFailed: number
}

/** One publish on its way: queued for this tick's write, then awaiting Redis's answer. */
interface Pending {
  readonly channel: string
  readonly message: string
  readonly resolve: () => void
  readonly reject: (err: Error) => void
  /** When it fails unanswered (performance.now() ms). */
  readonly at: number
  /** When it was asked for, for the duration metric; 0 without metrics. */
  readonly started: number
}

/**
 * Publishes on the plugin's channels. It never queues: while Redis is not
 * connected a publish fails at once, and an unanswered one fails after
 * `timeout`, both with FST_RT_BROKER_UNAVAILABLE, so nothing accumulates
 * during an outage.
 *
 * The publishes of one tick leave together, at its end (before the event
 * loop goes back to I/O, so no latency is added): the connection's stream
 * is corked while they are written, so they go out in one system call
 * instead of one each, and Redis reads them in one go (about a third of
 * the client CPU per publish in bursts of 16 or more). A Redis Cluster
 * gets them one by one, spread over its nodes. Every publish has the same
 * timeout, so they come due in the order they were sent: one timer watches
 * the oldest, not a timer each.
 */
export class RedisPublisher {
  readonly client: Client
  readonly owned: boolean
  readonly #sharded: boolean
  readonly #corks: boolean
  readonly #timeout: number
  readonly #counters: PublishCounters
  readonly #metrics = new RedisMetrics()
  #connected: Promise<void> | undefined
  /** Asked for in this tick, written at its end. */
  #batch: Pending[] = []
  /** Characters of the messages in #batch. */
  #held = 0
  /** Written and not answered yet, oldest first. */
  readonly #inFlight = new Set<Pending>()
  #timer: NodeJS.Timeout | undefined
  readonly #flush = (): void => { this.#write() }
  readonly #expire = (): void => { this.#failOverdue() }

  constructor (connection: RedisConnection, sharded: boolean, timeout: number, counters: PublishCounters) {
    const { client, owned } = openClient(connection)
    this.client = client
    this.owned = owned
    this.#sharded = sharded
    this.#corks = (client as { isCluster?: boolean }).isCluster !== true
    this.#timeout = timeout
    this.#counters = counters
    // Until the first 'ready', a publish waits for it (within the timeout); after that, an outage fails fast.
    if (this.client.status !== 'ready') {
      this.#connected = ready(this.client, timeout).finally(() => { this.#connected = undefined })
      this.#connected.catch(noop)
    }
  }

  publish (channel: string, message: string): Promise<void> {
    if (this.#connected !== undefined) {
      return this.#connected.then(() => this.publish(channel, message), (err: unknown) => {
        this.#counters.publishFailed++
        throw err
      })
    }
    if (this.client.status !== 'ready') {
      this.#counters.publishFailed++
      return Promise.reject(new FST_RT_BROKER_UNAVAILABLE('Redis is not connected'))
    }
    return new Promise((resolve, reject) => {
      const now = performance.now()
      this.#batch.push({ channel, message, resolve, reject, at: now + this.#timeout, started: this.#metrics.enabled ? now : 0 })
      if (this.#batch.length === 1) process.nextTick(this.#flush)
      // A large burst leaves in parts as it is asked for: Redis gets to work
      // while the rest is being encoded, and one huge write costs more.
      this.#held += message.length
      if (this.#held >= FLUSH_AT) this.#write()
    })
  }

  /** Quits the connection if the publisher opened it. */
  async close (): Promise<void> {
    clearTimeout(this.#timer)
    this.#timer = undefined
    if (this.owned) await quit(this.client, this.#timeout)
  }

  #write (): void {
    const batch = this.#batch
    if (batch.length === 0) return
    this.#batch = []
    this.#held = 0
    const client = this.client
    if (client.status !== 'ready') {
      for (const pending of batch) this.#fail(pending, new FST_RT_BROKER_UNAVAILABLE('Redis is not connected'))
      return
    }
    for (const pending of batch) this.#inFlight.add(pending)
    if (this.#timer === undefined) this.#arm(this.#timeout)
    // Corked, the commands leave in one write when the batch is done (a single node: a Cluster spreads them over its nodes).
    const stream = batch.length > 1 ? (client as { stream?: Writable }).stream : undefined
    const corked = stream !== undefined && typeof stream.cork === 'function' && this.#corks
    if (corked) stream.cork()
    for (const pending of batch) {
      const sent = (this.#sharded ? client.spublish(pending.channel, pending.message) : client.publish(pending.channel, pending.message)) as Promise<number>
      sent.then((receivers) => this.#answered(pending, receivers), (err: Error) => this.#answered(pending, err))
    }
    if (corked) stream.uncork()
  }

  /** Redis answered (a receiver count) or the command failed; nothing if the publish timed out already. */
  #answered (pending: Pending, outcome: number | Error): void {
    if (!this.#inFlight.delete(pending)) return
    if (typeof outcome !== 'number') {
      const code = (outcome as Error & { code?: string }).code
      this.#fail(pending, code === 'FST_RT_BROKER_UNAVAILABLE' ? outcome : new FST_RT_BROKER_UNAVAILABLE(outcome.message))
      return
    }
    this.#counters.published++
    if (outcome === 0) this.#counters.publishedToNobody++
    if (pending.started !== 0) this.#metrics.published(pending.started, outcome)
    pending.resolve()
  }

  #fail (pending: Pending, err: Error): void {
    this.#counters.publishFailed++
    if (pending.started !== 0) this.#metrics.failed(pending.started)
    pending.reject(err)
  }

  #arm (ms: number): void {
    // Unref'd: a publish in flight holds a Redis connection, which keeps the process up on its own.
    this.#timer = setTimeout(this.#expire, Math.max(1, Math.ceil(ms)))
    this.#timer.unref()
  }

  #failOverdue (): void {
    this.#timer = undefined
    const now = performance.now()
    for (const pending of this.#inFlight) {
      if (pending.at > now) {
        this.#arm(pending.at - now)
        return
      }
      this.#inFlight.delete(pending)
      this.#fail(pending, new FST_RT_BROKER_UNAVAILABLE(`publish not answered within ${this.#timeout} ms`))
    }
  }
}

function noop (): void {}
