import type { Cluster, Redis } from 'ioredis'
import { presenceEntry, type PresenceEntry, type PresenceStore, type PresenceStoreOptions } from '../presence.js'

/**
 * Who is in which room, across instances, in Redis. Each room is a sorted
 * set of `[connectionId, userId]` members scored by expiry time; every
 * instance re-scores its own entries every ttl / 3, so the entries of an
 * instance that dies or hangs expire within `ttl`. Queries read only Redis,
 * never the other instances, so a hung instance cannot stall them.
 */
export class RedisPresence implements PresenceStore {
  readonly #client: Redis | Cluster
  readonly #prefix: string
  readonly #options: PresenceStoreOptions
  // namespace -> room -> connection id -> member string, for refreshes.
  readonly #local = new Map<string, Map<string, Map<string, string>>>()
  #timer: NodeJS.Timeout | undefined

  constructor (client: Redis | Cluster, prefix: string, options: PresenceStoreOptions) {
    this.#client = client
    this.#prefix = prefix
    this.#options = options
  }

  add (namespace: string, room: string, connectionId: string, userId: string | undefined): void {
    let rooms = this.#local.get(namespace)
    if (rooms === undefined) this.#local.set(namespace, rooms = new Map())
    let members = rooms.get(room)
    if (members === undefined) rooms.set(room, members = new Map())
    const member = JSON.stringify([connectionId, userId ?? null])
    members.set(connectionId, member)
    this.#startTimer()
    const client = this.#ready()
    if (client === undefined) return
    const key = this.#key(namespace, room)
    this.#settle(Promise.all([client.zadd(key, Date.now() + this.#options.ttl, member), client.pexpire(key, this.#options.ttl * 2)]))
  }

  remove (namespace: string, room: string, connectionId: string): void {
    const rooms = this.#local.get(namespace)
    const members = rooms?.get(room)
    const member = members?.get(connectionId)
    if (member === undefined) return
    members!.delete(connectionId)
    if (members!.size === 0) rooms!.delete(room)
    if (rooms!.size === 0) this.#local.delete(namespace)
    const client = this.#ready()
    if (client !== undefined) this.#settle(client.zrem(this.#key(namespace, room), member))
    if (this.#local.size === 0) this.#stopTimer()
  }

  /** Live entries of a room on every instance. */
  async list (namespace: string, room: string): Promise<PresenceEntry[]> {
    const members = await this.#client.zrangebyscore(this.#key(namespace, room), Date.now(), '+inf')
    return members.map(parseMember)
  }

  /** Number of live entries of a room on every instance. */
  async count (namespace: string, room: string): Promise<number> {
    return this.#client.zcount(this.#key(namespace, room), Date.now(), '+inf')
  }

  /** Stops refreshing and removes this instance's entries (its connections are gone). */
  async close (): Promise<void> {
    this.#stopTimer()
    this.#local.clear()
  }

  #key (namespace: string, room: string): string {
    return `${this.#prefix}:presence:${namespace}:${room}`
  }

  #ready (): Redis | Cluster | undefined {
    return this.#client.status === 'ready' ? this.#client : undefined
  }

  #settle (promise: Promise<unknown>): void {
    promise.catch((err: unknown) => this.#options.log.warn({ err }, 'realtime presence update failed; the next refresh repairs it'))
  }

  #startTimer (): void {
    if (this.#timer !== undefined) return
    this.#timer = setInterval(() => { this.#refresh() }, Math.max(Math.floor(this.#options.ttl / 3), 1))
    this.#timer.unref()
  }

  #stopTimer (): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  /** Re-scores this instance's entries, then removes expired ones in the rooms it has members in. */
  #refresh (): void {
    const client = this.#ready()
    if (client === undefined) return
    const now = Date.now()
    const expiry = now + this.#options.ttl
    for (const [namespace, rooms] of this.#local) {
      for (const [room, members] of rooms) {
        const key = this.#key(namespace, room)
        const scored: Array<string | number> = []
        for (const member of members.values()) scored.push(expiry, member)
        this.#settle(client.zadd(key, ...scored).then(() => client.pexpire(key, this.#options.ttl * 2)))
        this.#settle(this.#sweep(client, namespace, room, now))
      }
    }
  }

  async #sweep (client: Redis | Cluster, namespace: string, room: string, now: number): Promise<void> {
    const key = this.#key(namespace, room)
    const expired = await client.zrangebyscore(key, '-inf', now)
    for (const member of expired) {
      // ZREM answers 1 to one remover only: that instance reports the leave.
      if (await client.zrem(key, member) === 1) this.#options.onExpired(namespace, room, parseMember(member))
    }
  }
}

function parseMember (member: string): PresenceEntry {
  const [connectionId, userId] = JSON.parse(member) as [string, string | null]
  return presenceEntry(connectionId, userId ?? undefined)
}
