import type { Cluster, Redis } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'

/** One connection's membership of a room, as presence reports it. */
export interface PresenceEntry {
  connectionId: string
  userId: string | undefined
  /** The instance the connection lives on (the part of its id before the last dot). */
  instanceId: string
}

/** The data of a `presence` event, sent to a room's members when presence events are on. */
export interface PresenceEvent {
  action: 'join' | 'leave'
  room: string
  connectionId: string
  userId: string | null
}

export interface PresenceTrackerOptions {
  /** Redis to keep presence in, for every instance; without it presence is this process's own. */
  client: Redis | Cluster | undefined
  prefix: string
  /** Milliseconds an instance's entries outlive its last refresh; refreshed every ttl / 3. */
  ttl: number
  log: FastifyBaseLogger
  /** An entry expired (its instance stopped refreshing) and this instance removed it first. */
  onExpired: (namespace: string, room: string, entry: PresenceEntry) => void
}

/**
 * Who is in which room, across instances. In Redis each room is a sorted
 * set of `[connectionId, userId]` members scored by expiry time; every
 * instance re-scores its own entries every ttl / 3, so the entries of an
 * instance that dies or hangs expire within `ttl`. Queries read only Redis,
 * never the other instances, so a hung instance cannot stall them.
 */
export class PresenceTracker {
  readonly #options: PresenceTrackerOptions
  // namespace -> room -> connection id -> member string, for refreshes.
  readonly #local = new Map<string, Map<string, Map<string, string>>>()
  #timer: NodeJS.Timeout | undefined

  constructor (options: PresenceTrackerOptions) {
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
    const client = this.#options.client
    if (client === undefined) return [...(this.#local.get(namespace)?.get(room)?.values() ?? [])].map(parseMember)
    const members = await client.zrangebyscore(this.#key(namespace, room), Date.now(), '+inf')
    return members.map(parseMember)
  }

  /** Number of live entries of a room on every instance. */
  async count (namespace: string, room: string): Promise<number> {
    const client = this.#options.client
    if (client === undefined) return this.#local.get(namespace)?.get(room)?.size ?? 0
    return client.zcount(this.#key(namespace, room), Date.now(), '+inf')
  }

  /** Stops refreshing and removes this instance's entries (its connections are gone). */
  async close (): Promise<void> {
    this.#stopTimer()
    this.#local.clear()
  }

  #key (namespace: string, room: string): string {
    return `${this.#options.prefix}:presence:${namespace}:${room}`
  }

  #ready (): Redis | Cluster | undefined {
    const client = this.#options.client
    return client !== undefined && client.status === 'ready' ? client : undefined
  }

  #settle (promise: Promise<unknown>): void {
    promise.catch((err: unknown) => this.#options.log.warn({ err }, 'realtime presence update failed; the next refresh repairs it'))
  }

  #startTimer (): void {
    if (this.#timer !== undefined || this.#options.client === undefined) return
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
  return { connectionId, userId: userId ?? undefined, instanceId: connectionId.slice(0, connectionId.lastIndexOf('.')) }
}
