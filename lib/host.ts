import { randomBytes } from 'node:crypto'
import type { EventEmitter } from 'node:events'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import { Admission } from './admission.js'
import type { Broker, BrokerHost, BrokerStatus, BroadcastPacket, UserCommand } from './broker.js'
import { Connection } from './connection.js'
import { Heartbeats } from './heartbeat.js'
import type { History, HistoryOptions, SequencedPacket } from './history.js'
import { LocalHistory } from './local-history.js'
import type { Namespace, NamespaceHost, ResumeClaim } from './namespace.js'
import type { ResolvedOptions } from './options.js'
import { LocalPresence, type PresenceEntry, type PresenceStore } from './presence.js'
import { CloseCode } from './protocol/close-codes.js'
import type { RouteRuntime } from './route-runtime.js'
import { attachSocket, releaseUpgradeObjects } from './socket-events.js'
import { HostTelemetry } from './telemetry.js'
import { kAdd, kDeliver, kHistoryClosed, kOpen, kPresenceExpired, kStartSession } from './symbols.js'
import { clearUpgradeTimer } from './upgrade-guard.js'

type AnyConnection = Connection<any, any>

/**
 * The plugin's state on this instance, behind the public `app.realtime`:
 * namespaces, admission books, heartbeat timers, the broker and presence.
 * Brokers and namespaces call back into it (BrokerHost, NamespaceHost);
 * nothing here is part of the typed decorator.
 */
export class RealtimeHost implements BrokerHost, NamespaceHost {
  /** This instance's id, a prefix of every connection id it hands out. */
  readonly instanceId = randomBytes(6).toString('base64url')
  readonly options: ResolvedOptions
  readonly broker: Broker
  readonly log: FastifyBaseLogger
  /** Presence of this process, or the broker's shared store once started. */
  presence: PresenceStore = new LocalPresence()
  readonly namespaces = new Map<string, Namespace<any>>()
  // Route values declared with defineRoute(), for namespace(route): their path may have gained a prefix.
  readonly byRoute = new WeakMap<object, Namespace<any>>()
  readonly admission: Admission
  readonly counters = { droppedMessages: 0, slowConsumersClosed: 0 }
  readonly heartbeats: Heartbeats
  /** Metrics and diagnostics channels; instruments come from the MeterProvider set when the plugin registers. */
  readonly telemetry = new HostTelemetry()
  /** Where `broker:up` / `broker:down` are emitted: the public decorator. */
  events: EventEmitter | undefined
  closing = false
  #sequence = 0

  constructor (options: ResolvedOptions, broker: Broker, log: FastifyBaseLogger) {
    this.options = options
    this.broker = broker
    this.log = log
    this.admission = new Admission(options)
    this.heartbeats = new Heartbeats((conn) => this.telemetry.route(conn.namespace.path).heartbeatTerminated())
  }

  /** Starts the broker, then takes its shared presence store if it has one. */
  async start (): Promise<void> {
    await this.broker.start(this)
    const shared = this.broker.createPresence?.({
      ttl: this.options.presenceTtl,
      log: this.log,
      onExpired: (namespace: string, room: string, entry: PresenceEntry) => {
        this.namespaces.get(namespace)?.[kPresenceExpired](room, entry)
      }
    })
    if (shared !== undefined) this.presence = shared
    this.telemetry.observeBroker(this.broker.kind, () => this.broker.status)
  }

  get connectionCount (): number {
    let count = 0
    for (const namespace of this.namespaces.values()) count += namespace.size
    return count
  }

  /** Closes a user's connections here, then has the broker carry the command to the other instances. */
  disconnectUser (command: UserCommand): Promise<void> {
    this.applyUserCommand(command)
    return this.broker.publishUserCommand(command)
  }

  /** BrokerHost: a packet from another instance. */
  deliver (packet: BroadcastPacket): number {
    return this.namespaces.get(packet.namespace)?.[kDeliver](packet) ?? 0
  }

  /** BrokerHost */
  applyUserCommand (command: UserCommand): number {
    const connections = this.admission.userConnections(command.userId)
    if (connections === undefined) return 0
    let count = 0
    for (const conn of [...connections]) {
      conn.close(command.code, command.reason)
      count++
    }
    return count
  }

  /** BrokerHost */
  brokerStatusChanged (status: BrokerStatus): void {
    if (status === 'down') this.log.warn({ broker: this.broker.kind }, 'realtime broker down: cross-instance delivery paused, local delivery goes on')
    else this.log.info({ broker: this.broker.kind }, 'realtime broker up: cross-instance delivery resumed')
    this.telemetry.brokerStatusChanged(this.broker.kind, status)
    this.events?.emit(`broker:${status}`)
  }

  /** NamespaceHost */
  publishFailed (namespace: string, err: unknown): void {
    this.log.warn({ err, namespace }, 'realtime publish to other instances failed; local delivery done')
  }

  /** NamespaceHost */
  connectionRemoved (conn: AnyConnection): void {
    this.admission.remove(conn)
  }

  /** A socket upgraded on a route: the connection begins. */
  accept (namespace: Namespace<any>, runtime: RouteRuntime, socket: WebSocket, request: FastifyRequest,
    log: FastifyBaseLogger): void {
    clearUpgradeTimer(request.raw)
    releaseUpgradeObjects(socket, request)
    // The client may have reset the TCP connection while the hooks ran; its
    // 'close' has been emitted already, so ws would never report this socket closed.
    if (request.raw.socket?.destroyed === true) {
      socket.terminate()
      return
    }
    if (this.closing) {
      socket.close(CloseCode.GOING_AWAY, 'server shutting down')
      return
    }
    const userId = this.options.userId((request as { user?: unknown }).user)
    const id = `${this.instanceId}.${(++this.#sequence).toString(36)}`
    const conn = new Connection(id, namespace, runtime, socket, request, userId, log)
    attachSocket(socket, conn)
    this.admission.add(conn)
    runtime.telemetry.opened(conn)
    const ready = namespace[kAdd](conn)
    conn[kOpen](namespace.recovery === undefined ? ready : namespace[kStartSession](conn, resumeClaim(request), ready))
  }

  /** NamespaceHost: the broker's shared history, or one in this process with the in-memory broker. */
  createHistory (namespace: string, options: HistoryOptions, deliver: (packet: SequencedPacket) => void): History {
    if (this.broker.createHistory !== undefined) return this.broker.createHistory(namespace, options)
    return new LocalHistory(options, deliver)
  }

  /** preClose: refuse new connections, close open ones with 1001, wait for them within closeTimeout. */
  async closeConnections (): Promise<void> {
    this.closing = true
    this.heartbeats.stop()
    const closed: Promise<void>[] = []
    for (const namespace of this.namespaces.values()) {
      for (const conn of namespace.connections()) {
        closed.push(new Promise((resolve) => conn.socket.once('close', () => resolve())))
        conn.close(CloseCode.GOING_AWAY, 'server shutting down')
      }
    }
    if (closed.length === 0) return
    const allClosed = Promise.all(closed)
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<void>((resolve) => { timer = setTimeout(resolve, this.options.closeTimeout) })
    await Promise.race([allClosed, timedOut])
    clearTimeout(timer)
    // Peers that never answered the close frame: drop them; their 'close' follows at once.
    for (const namespace of this.namespaces.values()) {
      for (const conn of namespace.connections()) conn.terminate()
    }
    await allClosed
  }

  /** onClose: presence, then the broker. */
  async close (): Promise<void> {
    this.telemetry.stop()
    // Sessions lost by the shutdown are written before the broker's connections go.
    await Promise.all([...this.namespaces.values()].map((namespace) => namespace[kHistoryClosed]()))
    await this.presence.close()
    await this.broker.close()
  }
}

/** `?resume=<session id>&pos=<position>` of the upgrade's URL, read from the raw URL whatever the route's querystring schema keeps. */
function resumeClaim (request: FastifyRequest): ResumeClaim | undefined {
  const url = request.raw.url ?? ''
  const start = url.indexOf('?')
  if (start === -1 || !url.includes('resume=', start)) return undefined
  const query = new URLSearchParams(url.slice(start + 1))
  const sessionId = query.get('resume')
  if (sessionId === null || sessionId === '') return undefined
  const position = query.get('pos')
  return { sessionId, position: position === null || position === '' ? undefined : position }
}
