import { randomBytes } from 'node:crypto'
import { BroadcastOperator, type BroadcastTarget, type ConnectionRef } from '../broadcast.js'
import { CloseCode } from '../protocol/close-codes.js'
import { RedisPublisher, type PublishCounters } from './publisher.js'
import type { RedisConnection } from './connection.js'
import { DEFAULTS, RECOVERY_DEFAULTS } from '../options.js'
import { Channels, encodeBroadcast, encodeUserCommand } from './wire.js'
import { appendToHistory } from './history.js'
import type { EventMap, EventName, EventPayload } from '../route.js'
import { encodeEvent } from '../protocol/envelope.js'
import { kEncode, kPublish } from '../symbols.js'

export interface RealtimeEmitterOptions {
  /** The Redis the servers use: a client (never closed by the emitter), a URL or ioredis options. */
  redis: RedisConnection
  /** Must match the servers' `redisPrefix`. @default 'fastify-realtime' */
  prefix?: string
  /** Must match the servers' `redisSharded`. @default false */
  sharded?: boolean
  /** Milliseconds a publish may take before it rejects with FST_RT_BROKER_UNAVAILABLE. @default 2000 */
  publishTimeout?: number
}

/**
 * Emits to the servers' namespaces, rooms and users from a process that runs
 * no WebSocket server (a worker, a cron job), with only a Redis connection.
 *
 *   const emitter = new RealtimeEmitter({ redis: process.env.REDIS_URL })
 *   await emitter.namespace('/chat').to('user:42').emit('notification', { text: 'done' })
 */
export class RealtimeEmitter {
  /** Publish counters. */
  readonly stats: PublishCounters = { published: 0, publishedToNobody: 0, publishFailed: 0 }
  readonly #publisher: RedisPublisher
  readonly #channels: Channels
  // Servers skip messages stamped with their own id; an emitter's is its own.
  readonly #instanceId = `emitter-${randomBytes(6).toString('base64url')}`

  readonly #sharded: boolean
  readonly #timeout: number

  constructor (options: RealtimeEmitterOptions) {
    this.#sharded = options.sharded ?? DEFAULTS.redisSharded
    this.#timeout = options.publishTimeout ?? DEFAULTS.publishTimeout
    this.#publisher = new RedisPublisher(options.redis, options.sharded ?? DEFAULTS.redisSharded,
      options.publishTimeout ?? DEFAULTS.publishTimeout, this.stats)
    this.#channels = new Channels(options.prefix ?? DEFAULTS.redisPrefix)
  }

  /**
   * A namespace to emit to, by route path. For a route with `recovery`, say
   * so (with the route's `maxEvents` when it sets one): its events then go
   * through the namespace's history, with a position, like the servers' own.
   */
  namespace<E extends EventMap = EventMap> (path: string, options: EmitterNamespaceOptions = {}): EmitterNamespace<E> {
    if (options.recovery !== undefined && options.recovery !== false) {
      const maxEvents = options.recovery === true ? RECOVERY_DEFAULTS.maxEvents : options.recovery.maxEvents ?? RECOVERY_DEFAULTS.maxEvents
      const history = {
        client: this.#publisher.client,
        channel: this.#channels.namespace(path),
        instanceId: this.#instanceId,
        maxEvents,
        sharded: this.#sharded,
        timeout: this.#timeout
      }
      return new EmitterNamespace<E>(path, (rooms, except, frame) => appendToHistory(history, { namespace: path, rooms, except, frame }))
    }
    return new EmitterNamespace<E>(path, (rooms, except, frame) => {
      const packet = { namespace: path, rooms, except, frame }
      return this.#publisher.publish(this.#channels.of(packet), encodeBroadcast(this.#instanceId, packet))
    })
  }

  /** Closes every connection of a user on every instance (default code 4403). */
  disconnectUser (userId: string, code: number = CloseCode.DISCONNECTED, reason = 'disconnected'): Promise<void> {
    return this.#publisher.publish(this.#channels.commands,
      encodeUserCommand(this.#instanceId, { kind: 'disconnect', userId, code, reason }))
  }

  /** Quits the Redis connection if the emitter opened it. */
  close (): Promise<void> {
    return this.#publisher.close()
  }
}

/** Options of `emitter.namespace()`. */
export interface EmitterNamespaceOptions {
  /** The route has `recovery` (with this `maxEvents`, when it sets one). @default false */
  recovery?: boolean | { maxEvents?: number }
}

type Publish = (rooms: readonly string[], except: readonly string[], frame: string) => Promise<void>

/** The emitting half of a namespace: `emit`, `to`, `except`. */
export class EmitterNamespace<E extends EventMap = EventMap> implements BroadcastTarget {
  readonly path: string
  readonly #publish: Publish

  /** @internal */
  constructor (path: string, publish: Publish) {
    this.path = path
    this.#publish = publish
  }

  emit<K extends EventName<E>> (type: K, data: EventPayload<E, K>): Promise<void> {
    return new BroadcastOperator<E>(this, [], []).emit(type, data)
  }

  to (room: string | readonly string[]): BroadcastOperator<E> {
    return new BroadcastOperator<E>(this, typeof room === 'string' ? [room] : room, [])
  }

  except (connection: ConnectionRef | readonly ConnectionRef[]): BroadcastOperator<E> {
    return new BroadcastOperator<E>(this, [], []).except(connection)
  }

  /** @internal an emitter knows no schemas: events go out as JSON.stringify writes them */
  [kEncode] (type: string, data: unknown): string {
    return encodeEvent(type, data)
  }

  /** @internal */
  [kPublish] (rooms: readonly string[], except: readonly string[], frame: string): Promise<void> {
    return this.#publish(rooms, except, frame)
  }
}
