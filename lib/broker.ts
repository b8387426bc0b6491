import type { FastifyBaseLogger } from 'fastify'
import type { History, HistoryOptions } from './history.js'
import type { PresenceStore, PresenceStoreOptions } from './presence.js'

/*
 * The seam between "who should receive this frame" and "how it gets to the
 * other instances". The core delivers every packet on this instance itself,
 * once, whatever the broker; a broker only carries packets between
 * instances and hands the ones it receives to its host. A broker for NATS,
 * Postgres LISTEN/NOTIFY or Kafka implements `Broker` and nothing else
 * (docs/brokers.md); test/broker-contract.ts is the contract it must pass.
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
  /** Its place in the namespace's history, on recovery-enabled namespaces (the frame carries it as `pos`). */
  readonly seq?: number
}

/** A command addressed to connections of one user, on every instance. */
export interface UserCommand {
  readonly kind: 'disconnect'
  readonly userId: string
  readonly code: number
  readonly reason: string
}

/** What a broker calls back into: this instance, for what came from the others. */
export interface BrokerHost {
  /** This instance's id; a distributed broker stamps it on what it publishes and skips its own. */
  readonly instanceId: string
  readonly log: FastifyBaseLogger
  /** Delivers a packet from another instance to the matching connections here; returns how many got it. */
  deliver (packet: BroadcastPacket): number
  /** Applies a user command from another instance to the connections here; returns how many it touched. */
  applyUserCommand (command: UserCommand): number
  /** The broker's reach to other instances changed. */
  brokerStatusChanged (status: BrokerStatus): void
}

/** Whether the broker can reach the other instances right now. */
export type BrokerStatus = 'up' | 'down'

/** Carries broadcasts and user commands between instances. The in-memory broker carries nothing. */
export interface Broker {
  /** `memory`, `redis` or a custom broker's name, for logs and status. */
  readonly kind: string
  readonly status: BrokerStatus
  /** Counters for metrics, where the broker keeps any. */
  readonly stats?: Readonly<Record<string, number>>
  /** Called once while the plugin starts, before any connection exists. */
  start (host: BrokerHost): Promise<void>
  /**
   * Carries a packet to the other instances; this instance has delivered it
   * already. Resolves once it has left; rejects with
   * FST_RT_BROKER_UNAVAILABLE when it cannot within the broker's timeout.
   */
  publish (packet: BroadcastPacket): Promise<void>
  /** Carries a user command to the other instances; this instance has applied it already. */
  publishUserCommand (command: UserCommand): Promise<void>
  /** This instance now has a member in `room`: start receiving its traffic. Resolves once it does. */
  roomCreated (namespace: string, room: string): Promise<void>
  /** This instance's last member left `room`. */
  roomEmptied (namespace: string, room: string): void
  /** This instance now has a connection in `namespace`. Resolves once its traffic arrives. */
  namespaceCreated (namespace: string): Promise<void>
  /** This instance's last connection in `namespace` left. */
  namespaceEmptied (namespace: string): void
  /**
   * A presence store shared by every instance the broker reaches, called
   * once after `start`. Without it, presence covers this instance only.
   */
  createPresence? (options: PresenceStoreOptions): PresenceStore
  /**
   * The history of a recovery-enabled namespace, shared by every instance
   * the broker reaches, called after `start`: it orders the namespace's
   * broadcasts and delivers each, with its position, on every instance
   * (the one that appended it too). Without it, a broker other than the
   * in-memory one cannot serve routes with `recovery`.
   */
  createHistory? (namespace: string, options: HistoryOptions): History
  /** Stops traffic and quits only the connections the broker opened itself. */
  close (): Promise<void>
}

/** The settled promise brokers return when there is nothing to wait for; callers may compare against it to skip work. */
export const RESOLVED: Promise<void> = Promise.resolve()
