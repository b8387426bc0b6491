import { Redis, type Cluster, type RedisOptions } from 'ioredis'
import { FST_RT_BROKER_UNAVAILABLE } from '../errors.js'

/*
 * The Redis connections of the broker, the emitter and presence: the one
 * place that opens them (the only value import of ioredis), waits for them
 * and quits them.
 */

/** A Redis connection to reuse, a URL, or ioredis options for one the plugin opens itself. */
export type RedisConnection = Redis | Cluster | string | RedisOptions

/** An ioredis client: a single node or a cluster. */
export type RedisClient = Redis | Cluster

/** The client of `connection`, and whether it was opened here (and so is ours to quit). */
export function openClient (connection: RedisConnection): { client: RedisClient, owned: boolean } {
  if (typeof connection === 'string') return { client: new Redis(connection), owned: true }
  if (isClient(connection)) return { client: connection, owned: false }
  return { client: new Redis({ ...connection }), owned: true }
}

export function isClient (value: object): value is RedisClient {
  return typeof (value as RedisClient).duplicate === 'function' && typeof (value as RedisClient).publish === 'function'
}

/** Waits for a client's 'ready', within `ms`. */
export async function ready (client: RedisClient, ms: number): Promise<void> {
  if (client.status === 'ready') return
  let listener: (() => void) | undefined
  try {
    await withTimeout(new Promise<void>((resolve) => { listener = resolve; client.once('ready', listener) }), ms,
      `Redis not ready within ${ms} ms`)
  } finally {
    if (listener !== undefined) client.off('ready', listener)
  }
}

/** QUIT when connected (bounded by `timeout`), else drop the connection. */
export async function quit (client: RedisClient, timeout: number): Promise<void> {
  if (client.status === 'ready') {
    try {
      await withTimeout(client.quit(), timeout, 'quit')
      return
    } catch {}
  }
  client.disconnect()
}

/** Rejects with FST_RT_BROKER_UNAVAILABLE(message) when `promise` takes longer than `ms`. */
export function withTimeout<T> (promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new FST_RT_BROKER_UNAVAILABLE(message)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
