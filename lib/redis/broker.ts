import type { Cluster, Redis } from 'ioredis'
import { RESOLVED, type Broker, type BrokerHost, type BrokerStatus, type BroadcastPacket, type UserCommand } from '../broker.js'
import { FST_RT_BROKER_UNAVAILABLE } from '../errors.js'
import { DEFAULTS } from '../options.js'
import type { History, HistoryOptions } from '../history.js'
import type { PresenceStore, PresenceStoreOptions } from '../presence.js'
import { RedisHistory } from './history.js'
import { quit, ready, withTimeout, type RedisConnection } from './connection.js'
import { RedisPresence } from './presence.js'
import { RedisPublisher } from './publisher.js'
import { Channels, decodeMessage, encodeBroadcast, encodeUserCommand } from './wire.js'

export interface RedisBrokerOptions {
  /** Publishes go through this connection; subscriptions through a duplicate of it. */
  redis: RedisConnection
  /**
   * Prefix of every channel name, so several apps can share one Redis.
   * @default 'fastify-realtime'
   */
  prefix?: string
  /**
   * Use sharded pub/sub (SSUBSCRIBE/SPUBLISH, Redis 7+), for Redis Cluster.
   * @default false
   */
  sharded?: boolean
  /**
   * Milliseconds a publish may take before it rejects with FST_RT_BROKER_UNAVAILABLE.
   * @default 2000
   */
  publishTimeout?: number
  /**
   * Milliseconds `ready` waits for Redis at startup before failing with FST_RT_BROKER_UNAVAILABLE.
   * @default 10000
   */
  readyTimeout?: number
  /**
   * Milliseconds between PINGs on the subscriber connection; one not
   * answered within the same time drops and reopens the connection. An idle
   * subscriber would otherwise never notice a half-open TCP connection
   * (a dead network path, a hung Redis). `0` turns it off.
   * @default 5000
   */
  healthCheckInterval?: number
}

/** Counters of what crossed the broker, for metrics. */
// A type alias, not an interface, so it fits Broker['stats'] (Record<string, number>).
export type RedisBrokerStats = {
  /** Broadcasts and commands published. */
  published: number
  /** Publishes Redis answered with 0 receivers: no other instance heard them (loss, if one should have). */
  publishedToNobody: number
  /** Publishes refused or timed out (Redis unreachable). */
  publishFailed: number
  /** Messages from other instances delivered here. */
  received: number
  /** Messages on the plugin's channels that were not ours to deliver: garbage, foreign or unknown version. */
  ignored: number
  /** Times the subscriber lost Redis; messages published meanwhile are lost to this instance. */
  outages: number
}

type Client = Redis | Cluster
type Listener = (...args: any[]) => void

const SUBSCRIBE_BATCH = 500

/**
 * Carries broadcasts over Redis pub/sub: at-most-once, ordered per publisher and
 * channel. An instance subscribes to a namespace's channel while it has a
 * connection there, and to a room's channel while it has a member there.
 * While Redis is away, local delivery goes on, publishes fail fast with
 * FST_RT_BROKER_UNAVAILABLE, and the wanted subscriptions are kept as a set
 * that is replayed on reconnect (no queue grows during an outage).
 */
export class RedisBroker implements Broker {
  readonly kind = 'redis'
  readonly stats: RedisBrokerStats = { published: 0, publishedToNobody: 0, publishFailed: 0, received: 0, ignored: 0, outages: 0 }
  readonly #options: Required<Omit<RedisBrokerOptions, 'redis'>>
  readonly #connection: RedisConnection
  readonly #channels: Channels
  readonly #wanted = new Set<string>()
  readonly #attached: Array<[Client, string, Listener]> = []
  #host: BrokerHost | undefined
  #publisher: RedisPublisher | undefined
  #sub: Client | undefined
  #status: BrokerStatus = 'down'
  #closing = false
  #healthCheck: NodeJS.Timeout | undefined
  #checking = false

  constructor (options: RedisBrokerOptions) {
    this.#connection = options.redis
    this.#options = {
      prefix: options.prefix ?? DEFAULTS.redisPrefix,
      sharded: options.sharded ?? DEFAULTS.redisSharded,
      publishTimeout: options.publishTimeout ?? DEFAULTS.publishTimeout,
      readyTimeout: options.readyTimeout ?? DEFAULTS.redisReadyTimeout,
      healthCheckInterval: options.healthCheckInterval ?? DEFAULTS.redisHealthCheckInterval
    }
    this.#channels = new Channels(this.#options.prefix)
  }

  get status (): BrokerStatus {
    return this.#status
  }

  /** The connection publishes go through (also used for presence); undefined before start. */
  get client (): Client | undefined {
    return this.#publisher?.client
  }

  async start (host: BrokerHost): Promise<void> {
    this.#host = host
    const publisher = this.#publisher = new RedisPublisher(this.#connection, this.#options.sharded, this.#options.publishTimeout, this.stats)
    const pub = publisher.client
    // Subscriptions are replayed from #wanted on every 'ready': ioredis must neither resubscribe nor queue.
    // A Cluster subscribes per shard: SSUBSCRIBE must reach the node that owns the channel's slot.
    const sub = this.#sub = isCluster(pub)
      ? pub.duplicate([], { shardedSubscribers: this.#options.sharded })
      : pub.duplicate({ autoResubscribe: false, enableOfflineQueue: false })
    this.#listen(pub, 'error', (err: Error) => host.log.warn({ err }, 'realtime redis publisher error'))
    this.#listen(sub, 'error', (err: Error) => host.log.warn({ err }, 'realtime redis subscriber error'))
    this.#listen(sub, this.#options.sharded ? 'smessageBuffer' : 'messageBuffer', (_channel: Buffer, message: Buffer) => this.#receive(message))
    this.#listen(sub, 'ready', () => this.#subscriberReady())
    this.#listen(sub, 'close', () => this.#setStatus('down'))
    this.#listen(pub, 'ready', () => this.#setStatus(sub.status === 'ready' ? 'up' : 'down'))
    this.#listen(pub, 'close', () => this.#setStatus('down'))
    try {
      await Promise.all([ready(pub, this.#options.readyTimeout), ready(sub, this.#options.readyTimeout)])
      await this.#subscribe([this.#channels.commands])
      this.#setStatus('up')
      this.#startHealthCheck()
    } catch (err) {
      await this.close()
      throw err
    }
  }

  publish (packet: BroadcastPacket): Promise<void> {
    return this.#publish(this.#channels.of(packet), encodeBroadcast(this.#host!.instanceId, packet))
  }

  publishUserCommand (command: UserCommand): Promise<void> {
    return this.#publish(this.#channels.commands, encodeUserCommand(this.#host!.instanceId, command))
  }

  roomCreated (namespace: string, room: string): Promise<void> {
    return this.#want(this.#channels.room(namespace, room))
  }

  roomEmptied (namespace: string, room: string): void {
    this.#unwant(this.#channels.room(namespace, room))
  }

  namespaceCreated (namespace: string): Promise<void> {
    return this.#want(this.#channels.namespace(namespace))
  }

  namespaceEmptied (namespace: string): void {
    this.#unwant(this.#channels.namespace(namespace))
  }

  /** Presence in Redis, through the publishing connection. */
  createPresence (options: PresenceStoreOptions): PresenceStore {
    return new RedisPresence(this.#publisher!.client, this.#options.prefix, options)
  }

  /** The namespace's history in Redis, on the slot of its channel (redis/history.ts). */
  createHistory (namespace: string, options: HistoryOptions): History {
    const host = this.#host!
    return new RedisHistory({
      ...options,
      client: this.#publisher!.client,
      channel: this.#channels.namespace(namespace),
      namespace,
      instanceId: host.instanceId,
      sharded: this.#options.sharded,
      timeout: this.#options.publishTimeout,
      log: host.log,
      up: () => this.#status === 'up'
    })
  }

  async close (): Promise<void> {
    this.#closing = true
    clearInterval(this.#healthCheck)
    this.#wanted.clear()
    for (const [client, event, listener] of this.#attached) client.off(event, listener)
    this.#attached.length = 0
    const sub = this.#sub
    this.#sub = undefined
    if (sub !== undefined) await quit(sub, this.#options.publishTimeout)
    await this.#publisher?.close()
    this.#publisher = undefined
    this.#status = 'down'
  }

  #publish (channel: string, message: string): Promise<void> {
    if (this.#publisher === undefined || this.#status === 'down') {
      // Down means a connection to Redis is gone: refuse at once rather than
      // hand ioredis a command it may resend, late, after the reconnect.
      this.stats.publishFailed++
      return Promise.reject(new FST_RT_BROKER_UNAVAILABLE('Redis is not connected'))
    }
    return this.#publisher.publish(channel, message)
  }

  #want (channel: string): Promise<void> {
    this.#wanted.add(channel)
    if (this.#sub?.status !== 'ready') return RESOLVED
    // A join waits for its subscription, within the publish timeout; an outage must not hold it forever.
    return withTimeout(this.#subscribe([channel]), this.#options.publishTimeout, 'subscribe not answered').catch(noop)
  }

  #unwant (channel: string): void {
    if (!this.#wanted.delete(channel)) return
    const sub = this.#sub
    if (sub?.status !== 'ready') return
    const done = this.#options.sharded ? sub.sunsubscribe(channel) : sub.unsubscribe(channel)
    ;(done as Promise<unknown>).catch(noop)
  }

  async #subscribe (channels: string[]): Promise<void> {
    const sub = this.#sub
    if (sub === undefined) return
    if (this.#options.sharded) {
      // Channels of one SSUBSCRIBE must share a slot: one command each.
      await Promise.all(channels.map((channel) => sub.ssubscribe(channel)))
      return
    }
    for (let i = 0; i < channels.length; i += SUBSCRIBE_BATCH) {
      await sub.subscribe(...channels.slice(i, i + SUBSCRIBE_BATCH))
    }
  }

  #subscriberReady (): void {
    // After a reconnect: everything wanted now, which may differ from before the outage.
    const channels = [this.#channels.commands, ...this.#wanted]
    this.#subscribe(channels).then(
      () => this.#setStatus(this.#publisher?.client.status === 'ready' ? 'up' : 'down'),
      (err: unknown) => this.#host?.log.warn({ err }, 'realtime redis resubscribe failed; retried on next reconnect'))
  }

  #startHealthCheck (): void {
    const interval = this.#options.healthCheckInterval
    // A cluster's sharded subscribers are several connections, watched by ioredis itself.
    if (interval === 0 || this.#options.sharded) return
    this.#healthCheck = setInterval(() => {
      const sub = this.#sub
      if (sub === undefined || sub.status !== 'ready' || this.#checking) return
      this.#checking = true
      withTimeout((sub as Redis).ping(), interval, 'subscriber PING not answered').then(() => {
        this.#checking = false
      }, (err: unknown) => {
        this.#checking = false
        if (this.#closing) return
        this.#host?.log.warn({ err }, 'realtime redis subscriber unresponsive; reconnecting')
        ;(sub as Redis).disconnect(true)
      })
    }, interval)
    this.#healthCheck.unref()
  }

  #setStatus (status: BrokerStatus): void {
    if (this.#closing || status === this.#status) return
    this.#status = status
    if (status === 'down') this.stats.outages++
    this.#host?.brokerStatusChanged(status)
  }

  #receive (message: Buffer): void {
    const host = this.#host
    if (host === undefined) return
    const decoded = decodeMessage(message)
    if (decoded.kind === 'invalid') {
      this.stats.ignored++
      // Log the first few and then a sample, so a flood of garbage cannot flood the logs.
      if (this.stats.ignored <= 10 || this.stats.ignored % 1000 === 0) {
        host.log.warn({ reason: decoded.reason, ignored: this.stats.ignored }, 'realtime ignored a message on its redis channels')
      }
      return
    }
    // A history's broadcast is delivered by every instance in the history's order, its sender's included.
    if (decoded.instanceId === host.instanceId && (decoded.kind !== 'broadcast' || decoded.packet.seq === undefined)) return
    this.stats.received++
    if (decoded.kind === 'broadcast') host.deliver(decoded.packet)
    else host.applyUserCommand(decoded.command)
  }

  #listen (client: Client, event: string, listener: Listener): void {
    client.on(event, listener)
    this.#attached.push([client, event, listener])
  }
}

function isCluster (client: Client): client is Cluster {
  return (client as { isCluster?: boolean }).isCluster === true
}

function noop (): void {}
