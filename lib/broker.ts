import type { FastifyBaseLogger } from 'fastify'

/*
 * The seam between "who should receive this frame" and "how it gets to
 * every instance". Namespaces encode a frame once and hand it to the broker
 * as a packet; the broker delivers it on this instance through its host and,
 * for a distributed broker, to every other instance, which delivers it
 * through its own host without re-encoding it.
 */

/** One broadcast: an already encoded text frame and who gets it. */
export interface BroadcastPacket {
  /** Namespace path, e.g. `/chat`. */
  readonly namespace: string
  /** Rooms whose members receive the frame; empty means the whole namespace. */
  readonly rooms: readonly string[]
  /** Connection ids that must not receive it (the sender, usually). */
  readonly except: readonly string[]
  /** The exact text frame every recipient receives (a Buffer when it came from another instance). */
  readonly frame: string | Buffer
}

/** A command addressed to connections of one user, on every instance. */
export interface UserCommand {
  readonly kind: 'disconnect'
  readonly userId: string
  readonly code: number
  readonly reason: string
}

/** What a broker calls back into: this instance's delivery and bookkeeping. */
export interface BrokerHost {
  /** This instance's id; a distributed broker stamps it on what it publishes. */
  readonly instanceId: string
  readonly log: FastifyBaseLogger
  /** Delivers a packet to the matching connections on this instance; returns how many got it. */
  deliver (packet: BroadcastPacket): number
  /** Applies a user command to this instance's connections; returns how many it touched. */
  applyUserCommand (command: UserCommand): number
  /** The broker's reach to other instances changed. */
  brokerStatusChanged (status: BrokerStatus): void
}

/** Whether the broker can reach the other instances right now. */
export type BrokerStatus = 'up' | 'down'

/** The delivery backend. The in-memory broker is the default; the Redis broker spans instances. */
export interface Broker {
  /** `memory` or `redis`, for logs and status. */
  readonly kind: string
  readonly status: BrokerStatus
  /** Counters for metrics, where the broker keeps any. */
  readonly stats?: Readonly<Record<string, number>>
  /** Called once while the plugin starts, before any connection exists. */
  start (host: BrokerHost): Promise<void>
  /**
   * Delivers locally at once, then to the other instances. Resolves once the
   * packet has left this instance; rejects with FST_RT_BROKER_UNAVAILABLE
   * when it cannot within the broker's timeout (local delivery stands).
   */
  publish (packet: BroadcastPacket): Promise<void>
  /** Sends a user command to every instance, this one included. */
  publishUserCommand (command: UserCommand): Promise<void>
  /** This instance now has a local member in `room`: start receiving its traffic. Resolves once it does. */
  roomCreated (namespace: string, room: string): Promise<void>
  /** This instance's last local member left `room`. */
  roomEmptied (namespace: string, room: string): void
  /** This instance now has a connection in `namespace`. */
  namespaceCreated (namespace: string): Promise<void>
  /** This instance's last connection in `namespace` left. */
  namespaceEmptied (namespace: string): void
  /** Stops traffic and quits only the connections the broker opened itself. */
  close (): Promise<void>
}

/** The settled promise brokers return when there is nothing to wait for; callers may compare against it to skip work. */
export const RESOLVED: Promise<void> = Promise.resolve()
