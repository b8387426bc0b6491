import { RESOLVED, type Broker, type BroadcastPacket } from './broker.js'
import { BroadcastOperator, type ConnectionRef } from './broadcast.js'
import { textFrame } from './broadcast-frame.js'
import type { Connection } from './connection.js'
import { FST_RT_PRESENCE_DISABLED } from './errors.js'
import type { PresenceEntry, PresenceEvent, PresenceStore } from './presence.js'
import { encodeEvent } from './protocol/envelope.js'
import type { EventMap, EventName, EventPayload } from './route.js'
import { encodeAnyEvent, type EventEncoder } from './serialize.js'
import type { RouteTelemetry } from './telemetry.js'
import { kAdd, kDeliver, kEncode, kJoin, kLeave, kPresenceExpired, kPublish, kRemove, kRoomsOf, kSendFrame } from './symbols.js'

const NO_ROOMS: ReadonlySet<string> = new Set()

/** What a namespace needs from the plugin around it. */
export interface NamespaceHost {
  readonly broker: Broker
  readonly presence: PresenceStore
  /** Logs a failed publish that nobody awaited. */
  publishFailed (namespace: string, err: unknown): void
  /** A connection left the namespace for good. */
  connectionRemoved (conn: Connection<any, any>): void
}

/**
 * The connections of one WebSocket route path, and the rooms they are in:
 * the one owner of room membership on this instance, both ways (room ->
 * members, connection -> rooms). Counts and lists are local to this
 * instance; `emit` reaches every instance.
 */
export class Namespace<E extends EventMap = EventMap> {
  /** The route path, e.g. `/chat`. */
  readonly path: string
  readonly #host: NamespaceHost
  readonly #connections = new Map<string, Connection<E, any>>()
  readonly #rooms = new Map<string, Set<Connection<E, any>>>()
  // The other direction of #rooms, for connections in at least one room.
  readonly #memberships = new Map<Connection<E, any>, Set<string>>()
  // Rooms whose broker subscription is still being set up: a join waits for it.
  readonly #subscribing = new Map<string, Promise<void>>()
  #ready: Promise<void> | undefined
  readonly #presence: { events: boolean } | undefined
  readonly #encode: EventEncoder
  readonly #telemetry: RouteTelemetry | undefined

  /** @internal */
  constructor (path: string, host: NamespaceHost, presence: { events: boolean } | undefined = undefined,
    encode: EventEncoder = encodeAnyEvent, telemetry?: RouteTelemetry) {
    this.path = path
    this.#host = host
    this.#presence = presence
    this.#encode = encode
    this.#telemetry = telemetry
  }

  /** Who is in `room`, on every instance (route option `presence`). */
  presence (room: string): Promise<PresenceEntry[]> {
    if (this.#presence === undefined) return Promise.reject(new FST_RT_PRESENCE_DISABLED(this.path))
    return this.#host.presence.list(this.path, room)
  }

  /** How many are in `room`, on every instance (route option `presence`). */
  presenceCount (room: string): Promise<number> {
    if (this.#presence === undefined) return Promise.reject(new FST_RT_PRESENCE_DISABLED(this.path))
    return this.#host.presence.count(this.path, room)
  }

  /** Sends an event to every connection of the namespace, on every instance. */
  emit<K extends EventName<E>> (type: K, data: EventPayload<E, K>): Promise<void> {
    return new BroadcastOperator(this, [], []).emit(type, data)
  }

  /** Narrows a broadcast to the members of `room` (or of any of `rooms`). */
  to (room: string | readonly string[]): BroadcastOperator<E> {
    return new BroadcastOperator(this, typeof room === 'string' ? [room] : room, [])
  }

  /** Same as `to()`. */
  in (room: string | readonly string[]): BroadcastOperator<E> {
    return this.to(room)
  }

  /** A namespace-wide broadcast that leaves out some connections. */
  except (connection: ConnectionRef | readonly ConnectionRef[]): BroadcastOperator<E> {
    return new BroadcastOperator(this, [], []).except(connection)
  }

  /** Number of connections on this instance. */
  get size (): number {
    return this.#connections.size
  }

  /** A connection of this instance, by id. */
  connection (id: string): Connection<E, any> | undefined {
    return this.#connections.get(id)
  }

  /** The connections of this instance. */
  connections (): IterableIterator<Connection<E, any>> {
    return this.#connections.values()
  }

  /** Number of members of `room` on this instance. */
  roomSize (room: string): number {
    return this.#rooms.get(room)?.size ?? 0
  }

  /** Rooms with at least one member on this instance. */
  roomNames (): string[] {
    return [...this.#rooms.keys()]
  }

  /** The members of `room` on this instance. */
  roomMembers (room: string): Connection<E, any>[] {
    return [...(this.#rooms.get(room) ?? [])]
  }

  /** @internal registers a new connection; resolves when namespace-wide traffic reaches it */
  [kAdd] (conn: Connection<E, any>): Promise<void> | undefined {
    this.#connections.set(conn.id, conn)
    if (this.#connections.size === 1) {
      this.#ready = this.#host.broker.namespaceCreated(this.path)
    }
    return this.#ready === RESOLVED ? undefined : this.#ready
  }

  /** @internal the rooms `conn` is in */
  [kRoomsOf] (conn: Connection<E, any>): ReadonlySet<string> {
    return this.#memberships.get(conn) ?? NO_ROOMS
  }

  /** @internal the connection is gone: leaves its rooms; returns them, for its onClose */
  [kRemove] (conn: Connection<E, any>): ReadonlySet<string> {
    if (!this.#connections.delete(conn.id)) return NO_ROOMS
    const rooms = this.#memberships.get(conn)
    if (rooms !== undefined) {
      this.#memberships.delete(conn)
      for (const room of rooms) this.#removeMember(conn, room)
    }
    if (this.#connections.size === 0) {
      this.#ready = undefined
      this.#host.broker.namespaceEmptied(this.path)
    }
    this.#host.connectionRemoved(conn)
    return rooms ?? NO_ROOMS
  }

  /** @internal adds a member; resolves once the room's traffic from every instance reaches it */
  [kJoin] (conn: Connection<E, any>, room: string): Promise<void> {
    let rooms = this.#memberships.get(conn)
    if (rooms === undefined) {
      if (this.#connections.get(conn.id) !== conn) return RESOLVED
      this.#memberships.set(conn, rooms = new Set())
    }
    if (rooms.has(room)) return this.#subscribing.get(room) ?? RESOLVED
    rooms.add(room)
    if (this.#presence !== undefined) this.#presenceChanged('join', room, conn.id, conn.userId, true)
    const members = this.#rooms.get(room)
    if (members !== undefined) {
      members.add(conn)
      return this.#subscribing.get(room) ?? RESOLVED
    }
    this.#rooms.set(room, new Set([conn]))
    const subscribed = this.#host.broker.roomCreated(this.path, room)
    if (subscribed === RESOLVED) return RESOLVED
    const settled = subscribed.then(noop, noop).finally(() => {
      if (this.#subscribing.get(room) === settled) this.#subscribing.delete(room)
    })
    this.#subscribing.set(room, settled)
    return settled
  }

  /** @internal */
  [kLeave] (conn: Connection<E, any>, room: string): void {
    const rooms = this.#memberships.get(conn)
    if (rooms === undefined || !rooms.delete(room)) return
    if (rooms.size === 0) this.#memberships.delete(conn)
    this.#removeMember(conn, room)
  }

  #removeMember (conn: Connection<E, any>, room: string): void {
    const members = this.#rooms.get(room)
    if (members === undefined || !members.delete(conn)) return
    if (this.#presence !== undefined) this.#presenceChanged('leave', room, conn.id, conn.userId, true)
    if (members.size === 0) {
      this.#rooms.delete(room)
      this.#subscribing.delete(room)
      this.#host.broker.roomEmptied(this.path, room)
    }
  }

  /** @internal an entry of a dead or hung instance expired */
  [kPresenceExpired] (room: string, entry: PresenceEntry): void {
    if (this.#presence !== undefined) this.#presenceChanged('leave', room, entry.connectionId, entry.userId, false)
  }

  #presenceChanged (action: 'join' | 'leave', room: string, connectionId: string, userId: string | undefined, local: boolean): void {
    if (local) {
      if (action === 'join') this.#host.presence.add(this.path, room, connectionId, userId)
      else this.#host.presence.remove(this.path, room, connectionId)
    }
    if (!this.#presence!.events) return
    const event: PresenceEvent = { action, room, connectionId, userId: userId ?? null }
    // The joining connection is not told about itself; a leaving one is already out of the room.
    this[kPublish]([room], action === 'join' ? [connectionId] : [], encodeEvent('presence', event)).catch(noop)
  }

  /** @internal encodes an event of this route: through its schema, unless the route turned that off */
  [kEncode] (type: string, data: unknown): string {
    return this.#encode(type, data)
  }

  /** @internal delivers an encoded frame here, then hands it to the broker for the other instances */
  [kPublish] (rooms: readonly string[], except: readonly string[], frame: string): Promise<void> {
    const packet: BroadcastPacket = { namespace: this.path, rooms, except, frame }
    this.#telemetry?.broadcast()
    this[kDeliver](packet, true)
    const published = this.#host.broker.publish(packet)
    if (published !== RESOLVED) {
      // Mark the rejection handled so a fire-and-forget emit never becomes an
      // unhandled rejection; whoever awaits the promise still sees it.
      published.catch((err: unknown) => this.#host.publishFailed(this.path, err))
    }
    return published
  }

  /** @internal delivers a packet to this instance's matching connections, once each; returns the count */
  [kDeliver] (packet: BroadcastPacket, local = false): number {
    const { rooms, except } = packet
    let targets: Iterable<Connection<E, any>>
    if (rooms.length === 0) {
      targets = this.#connections.values()
    } else if (rooms.length === 1) {
      const members = this.#rooms.get(rooms[0]!)
      if (members === undefined) return 0
      targets = members
    } else {
      const union = new Set<Connection<E, any>>()
      for (const room of rooms) {
        const members = this.#rooms.get(room)
        if (members !== undefined) for (const conn of members) union.add(conn)
      }
      targets = union
    }
    // Encoded and framed once for every recipient (broadcast-frame.ts).
    let framed: Buffer | undefined
    let delivered = 0
    for (const conn of targets) {
      if (except.length !== 0 && except.includes(conn.id)) continue
      framed ??= textFrame(packet.frame)
      conn[kSendFrame](framed)
      delivered++
    }
    // One recording per broadcast, whatever the number of recipients.
    this.#telemetry?.delivered(delivered, local)
    return delivered
  }
}

function noop (): void {}
