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

/**
 * Who is in which room. Namespaces report their own members' joins and
 * leaves; queries answer for every instance the store spans. The in-memory
 * store spans this process; a broker that spans instances brings its own
 * (`Broker.createPresence`).
 */
export interface PresenceStore {
  add (namespace: string, room: string, connectionId: string, userId: string | undefined): void
  remove (namespace: string, room: string, connectionId: string): void
  /** Live entries of a room. */
  list (namespace: string, room: string): Promise<PresenceEntry[]>
  /** Number of live entries of a room. */
  count (namespace: string, room: string): Promise<number>
  /** Stops whatever the store runs; this instance's entries are gone. */
  close (): Promise<void>
}

/** What a shared presence store needs from the plugin. */
export interface PresenceStoreOptions {
  /** Milliseconds an instance's entries outlive its last refresh. */
  ttl: number
  log: FastifyBaseLogger
  /** An entry of another instance expired (that instance died or hung) and this instance removed it. */
  onExpired: (namespace: string, room: string, entry: PresenceEntry) => void
}

/** Presence of this process alone. */
export class LocalPresence implements PresenceStore {
  // namespace -> room -> connection id -> entry
  readonly #rooms = new Map<string, Map<string, Map<string, PresenceEntry>>>()

  add (namespace: string, room: string, connectionId: string, userId: string | undefined): void {
    let rooms = this.#rooms.get(namespace)
    if (rooms === undefined) this.#rooms.set(namespace, rooms = new Map())
    let members = rooms.get(room)
    if (members === undefined) rooms.set(room, members = new Map())
    members.set(connectionId, presenceEntry(connectionId, userId))
  }

  remove (namespace: string, room: string, connectionId: string): void {
    const rooms = this.#rooms.get(namespace)
    const members = rooms?.get(room)
    if (members === undefined || !members.delete(connectionId)) return
    if (members.size === 0) rooms!.delete(room)
    if (rooms!.size === 0) this.#rooms.delete(namespace)
  }

  async list (namespace: string, room: string): Promise<PresenceEntry[]> {
    return [...(this.#rooms.get(namespace)?.get(room)?.values() ?? [])]
  }

  async count (namespace: string, room: string): Promise<number> {
    return this.#rooms.get(namespace)?.get(room)?.size ?? 0
  }

  async close (): Promise<void> {
    this.#rooms.clear()
  }
}

/** The entry of a connection; its instance is the part of its id before the last dot. */
export function presenceEntry (connectionId: string, userId: string | undefined): PresenceEntry {
  return { connectionId, userId, instanceId: connectionId.slice(0, connectionId.lastIndexOf('.')) }
}
