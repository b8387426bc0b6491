import type { FastifyBaseLogger } from 'fastify'
import { RESOLVED, type Broker, type BroadcastPacket } from './broker.js'
import { BroadcastOperator, type ConnectionRef } from './broadcast.js'
import { textFrame } from './broadcast-frame.js'
import type { Connection } from './connection.js'
import { FST_RT_PRESENCE_DISABLED } from './errors.js'
import {
  addressedTo, encodeSession, isSessionId, newSessionId, parsePosition,
  type History, type HistoryOptions, type ResumeOutcome, type SequencedPacket
} from './history.js'
import type { PresenceEntry, PresenceEvent, PresenceStore } from './presence.js'
import { CloseCode } from './protocol/close-codes.js'
import { encodeEvent } from './protocol/envelope.js'
import type { EventMap, EventName, EventPayload } from './route.js'
import { encodeAnyEvent, type EventEncoder } from './serialize.js'
import type { RouteTelemetry } from './telemetry.js'
import {
  kAdd, kDeliver, kEncode, kHistoryClosed, kJoin, kLeave, kPresenceExpired, kPublish, kRemove, kReplayedTo, kRoomsOf, kSendFrame,
  kStartSession
} from './symbols.js'

const NO_ROOMS: ReadonlySet<string> = new Set()

/** What a namespace needs from the plugin around it. */
export interface NamespaceHost {
  readonly broker: Broker
  readonly log: FastifyBaseLogger
  readonly presence: PresenceStore
  /** Logs a failed publish that nobody awaited. */
  publishFailed (namespace: string, err: unknown): void
  /** A connection left the namespace for good. */
  connectionRemoved (conn: Connection<any, any>): void
  /** The history of a recovery-enabled namespace; `deliver` hands this instance its sequenced packets. */
  createHistory (namespace: string, options: HistoryOptions, deliver: (packet: SequencedPacket) => void): History
}

/** What a client claims when it comes back: `?resume=<session id>&pos=<last position>`. */
export interface ResumeClaim {
  readonly sessionId: string
  readonly position: string | undefined
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
  /** Route option `recovery`, resolved; undefined when off. */
  readonly #recovery: HistoryOptions | undefined
  // Made at first use: a broker's history needs the broker started.
  #store: History | undefined
  // While connections resume, the sequenced packets that arrive, for them to pick from.
  #held: SequencedPacket[] = []
  #resuming = 0
  // The last position delivered here; the next must follow it, or this instance missed some.
  #lastSeq = 0

  /** @internal */
  constructor (path: string, host: NamespaceHost, presence: { events: boolean } | undefined = undefined,
    encode: EventEncoder = encodeAnyEvent, telemetry?: RouteTelemetry, recovery?: HistoryOptions) {
    this.path = path
    this.#host = host
    this.#presence = presence
    this.#encode = encode
    this.#telemetry = telemetry
    this.#recovery = recovery
  }

  /** Route option `recovery` (`window`, `maxEvents`), or undefined when the route has none. */
  get recovery (): HistoryOptions | undefined {
    return this.#recovery
  }

  get #history (): History {
    this.#store ??= this.#host.createHistory(this.path, this.#recovery!, (packet) => { this[kDeliver](packet, true) })
    return this.#store
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
      // The namespace's traffic starts again here, from wherever the history is now.
      this.#lastSeq = 0
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
    if (conn.sessionId !== undefined && conn[kReplayedTo] !== Infinity) this.#history.closed(conn, rooms ?? NO_ROOMS)
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
    if (conn.sessionId !== undefined) this.#history.changed(conn)
    const members = this.#rooms.get(room)
    if (members !== undefined) {
      members.add(conn)
      return this.#subscribing.get(room) ?? RESOLVED
    }
    this.#rooms.set(room, new Set([conn]))
    // A history's events all travel on the namespace's traffic, in one order: no room subscription.
    if (this.#recovery !== undefined) return RESOLVED
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
    if (conn.sessionId !== undefined) this.#history.changed(conn)
  }

  /**
   * @internal
   * Begins the session of a new connection on a recovery-enabled route:
   * fresh, with its session frame at once, or, when the client claims a lost
   * session, once the history has answered. Returns what the open sequence
   * waits for (`ready`, the namespace's traffic, comes first).
   */
  [kStartSession] (conn: Connection<E, any>, claim: ResumeClaim | undefined,
    ready: Promise<void> | undefined): Promise<void> | undefined {
    // Set once, here: read-only for the application.
    const sessionId = (conn as { sessionId: string }).sessionId = newSessionId()
    if (claim === undefined || !isSessionId(claim.sessionId)) {
      conn.send(encodeSession(sessionId, false))
      // The session starts once the namespace's traffic reaches it: nothing before that is its to miss.
      if (ready === undefined) {
        this.#history.opened(conn)
        return undefined
      }
      return ready.then(() => { if (!conn.closed) this.#history.opened(conn) })
    }
    conn[kReplayedTo] = Infinity
    this.#resuming++
    const from = this.#held.length
    const history = this.#history
    const answered = (ready ?? RESOLVED).then(() => history.resume(claim.sessionId, conn.userId, claim.position))
    return answered.then(
      (outcome) => this.#resumed(conn, claim, outcome, from),
      (err: unknown) => {
        conn.log.warn({ err }, 'realtime session resume failed; a fresh session begins')
        this.#resumed(conn, claim, { recovered: false, reason: 'history unavailable' }, from)
      })
  }

  #resumed (conn: Connection<E, any>, claim: ResumeClaim, outcome: ResumeOutcome, from: number): void {
    const held = this.#held
    if (--this.#resuming === 0) this.#held = []
    conn[kReplayedTo] = 0
    if (conn.closed) {
      // Lost again before its session frame (the client gave up waiting): the client still holds the old
      // session's id, so the session is kept under that id, as it was, for the next attempt.
      if (outcome.recovered) {
        const lost = { id: outcome.connectionId, userId: conn.userId, sessionId: claim.sessionId, rooms: new Set(outcome.rooms), close: noop }
        this.#history.opened(lost, outcome.start)
        this.#history.closed(lost, outcome.rooms)
      }
      return
    }
    if (!outcome.recovered) {
      conn.log.debug({ reason: outcome.reason, sessionId: claim.sessionId }, 'realtime session not recovered')
      this.#history.opened(conn)
      conn.send(encodeSession(conn.sessionId!, false))
      return
    }
    ;(conn as { recovered: boolean }).recovered = true
    this.#history.opened(conn, outcome.start)
    for (const room of outcome.rooms) this[kJoin](conn, room).catch(noop)
    conn.send(encodeSession(conn.sessionId!, true))
    const rooms = this[kRoomsOf](conn)
    const ids = [outcome.connectionId, conn.id]
    let last = 0
    for (const packet of outcome.entries) {
      last = packet.seq
      if (addressedTo(packet, rooms, ids)) conn[kSendFrame](textFrame(packet.frame))
    }
    // Live packets that came while the history answered: those after its last entry.
    if (last === 0) last = parsePosition(claim.position ?? outcome.start)?.seq ?? 0
    for (let i = from; i < held.length; i++) {
      const packet = held[i]!
      if (packet.seq <= last) continue
      last = packet.seq
      if (addressedTo(packet, rooms, ids)) conn[kSendFrame](textFrame(packet.frame))
    }
    // Live copies of these may still be on their way from Redis (the resume answered first): they are skipped.
    conn[kReplayedTo] = last
  }

  /**
   * Events of the history never reached this instance (its subscriber was
   * cut off from Redis, or Redis restarted with a new epoch): its clients
   * would have a gap nobody told them of. They are closed with 4002 and
   * come back with a resume, which replays what they missed or says it cannot.
   */
  #missed (last: number, next: number): void {
    this.#host.log.warn({ namespace: this.path, last, next, connections: this.#connections.size },
      'realtime missed events of a recovery history; clients are asked to resume')
    for (const conn of this.#connections.values()) {
      if (conn[kReplayedTo] !== Infinity) conn.close(CloseCode.RESUME_NEEDED, 'missed events, resume')
    }
  }

  /** @internal writes what the history has pending */
  [kHistoryClosed] (): Promise<void> {
    return this.#store === undefined ? RESOLVED : this.#store.close()
  }

  #removeMember (conn: Connection<E, any>, room: string): void {
    const members = this.#rooms.get(room)
    if (members === undefined || !members.delete(conn)) return
    if (this.#presence !== undefined) this.#presenceChanged('leave', room, conn.id, conn.userId, true)
    if (members.size === 0) {
      this.#rooms.delete(room)
      this.#subscribing.delete(room)
      if (this.#recovery === undefined) this.#host.broker.roomEmptied(this.path, room)
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
    let published: Promise<void>
    if (this.#recovery === undefined) {
      this[kDeliver](packet, true)
      published = this.#host.broker.publish(packet)
    } else {
      // The history orders it and has it delivered everywhere, here too.
      published = this.#history.append(packet)
    }
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
    const resuming = this.#resuming
    const seq = packet.seq
    if (seq !== undefined && this.#connections.size !== 0) {
      if (seq !== this.#lastSeq + 1 && this.#lastSeq !== 0) this.#missed(this.#lastSeq, seq)
      this.#lastSeq = seq
      if (resuming !== 0) this.#held.push(packet as SequencedPacket)
    }
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
      // A resuming connection picks what it missed from the history and #held; a resumed one has what it was replayed.
      if (seq !== undefined && conn[kReplayedTo] >= seq) continue
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
