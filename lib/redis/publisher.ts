import { performance } from 'node:perf_hooks'
import { FST_RT_BROKER_UNAVAILABLE } from '../errors.js'
import { RedisMetrics } from './metrics.js'
import { openClient, ready, quit, withTimeout, type RedisClient, type RedisConnection } from './connection.js'

type Client = RedisClient

/** Outcome counters of publishes. */
export interface PublishCounters {
  published: number
  publishedToNobody: number
  publishFailed: number
}

/**
 * Publishes on the plugin's channels. It never queues: while Redis is not
 * connected a publish fails at once, and an unanswered one fails after
 * `timeout`, both with FST_RT_BROKER_UNAVAILABLE, so nothing accumulates
 * during an outage.
 */
export class RedisPublisher {
  readonly client: Client
  readonly owned: boolean
  readonly #sharded: boolean
  readonly #timeout: number
  readonly #counters: PublishCounters
  readonly #metrics = new RedisMetrics()
  #connected: Promise<void> | undefined

  constructor (connection: RedisConnection, sharded: boolean, timeout: number, counters: PublishCounters) {
    const { client, owned } = openClient(connection)
    this.client = client
    this.owned = owned
    this.#sharded = sharded
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
    const client = this.client
    if (client.status !== 'ready') {
      this.#counters.publishFailed++
      return Promise.reject(new FST_RT_BROKER_UNAVAILABLE('Redis is not connected'))
    }
    const metrics = this.#metrics
    const started = metrics.enabled ? performance.now() : 0
    const sent = (this.#sharded ? client.spublish(channel, message) : client.publish(channel, message)) as Promise<number>
    return withTimeout(sent, this.#timeout, `publish not answered within ${this.#timeout} ms`).then(
      (receivers) => {
        this.#counters.published++
        if (receivers === 0) this.#counters.publishedToNobody++
        if (metrics.enabled) metrics.published(started, receivers)
      },
      (err: Error & { code?: string }) => {
        this.#counters.publishFailed++
        if (metrics.enabled) metrics.failed(started)
        throw err.code === 'FST_RT_BROKER_UNAVAILABLE' ? err : new FST_RT_BROKER_UNAVAILABLE(err.message)
      })
  }

  /** Quits the connection if the publisher opened it. */
  async close (): Promise<void> {
    if (this.owned) await quit(this.client, this.#timeout)
  }
}

function noop (): void {}
