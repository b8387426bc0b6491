import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest, RouteOptions } from 'fastify'
import type { WebSocket } from 'ws'
import type { Broker, BrokerHost, BrokerStatus, BroadcastPacket, UserCommand } from './broker.js'
import { CloseCode } from './close-codes.js'
import { Connection } from './connection.js'
import { Admission, checkOrigin } from './admission.js'
import { FST_RT_INVALID_OPTION, FST_RT_UNKNOWN_NAMESPACE } from './errors.js'
import { Heartbeats } from './heartbeat.js'
import { Namespace, type NamespaceHost } from './namespace.js'
import { positiveInteger, resolveHeartbeat, resolveOrigins, resolveSlowConsumer, type ResolvedOptions } from './options.js'
import { resolveRateLimit } from './rate-limit.js'
import { PresenceTracker, type PresenceEntry } from './presence.js'
import { compileMessages, type EventMap, type RawRouteDefinition, type JsonRouteDefinition } from './route.js'
import { JsonRouteRuntime, RawRouteRuntime, type RouteLimits, type RouteRuntime } from './route-runtime.js'
import { attachSocket, releaseUpgradeObjects } from './socket-events.js'
import { kAdd, kDeliver, kOpen, kPresenceExpired } from './symbols.js'
import { clearUpgradeTimer } from './upgrade-guard.js'

type AnyConnection = Connection<any, any>
type PresenceTrackerClient = ConstructorParameters<typeof PresenceTracker>[0]['client']
type AnyRouteDefinition = (JsonRouteDefinition | RawRouteDefinition) & { path?: string }

/** Route options handed to Fastify unchanged: they run on the upgrade request. */
const FASTIFY_ROUTE_KEYS = ['onRequest', 'preParsing', 'preValidation', 'preHandler', 'preSerialization', 'onSend',
  'onResponse', 'onError', 'onRequestAbort', 'schema', 'config', 'logLevel', 'constraints', 'errorHandler'] as const

/**
 * The `app.realtime` decorator: namespaces, user-wide commands, broker
 * status. One per plugin registration. Emits `broker:down` and `broker:up`
 * when the broker loses or regains the other instances.
 */
export class Realtime extends EventEmitter implements BrokerHost, NamespaceHost {
  /** This instance's id, a prefix of every connection id it hands out. */
  readonly instanceId: string
  readonly broker: Broker
  readonly log: FastifyBaseLogger
  /** @internal presence storage: this process, or Redis once the broker has connected */
  presence: PresenceTracker
  readonly #options: ResolvedOptions
  readonly #namespaces = new Map<string, Namespace<any>>()
  // Route values declared with defineRoute(), for namespace(route): their path may have gained a prefix.
  readonly #byRoute = new WeakMap<object, Namespace<any>>()
  readonly #admission: Admission
  readonly #counters = { droppedMessages: 0, slowConsumersClosed: 0 }
  readonly #heartbeats = new Heartbeats()
  #sequence = 0
  #closing = false

  /** @internal */
  constructor (options: ResolvedOptions, broker: Broker, log: FastifyBaseLogger) {
    super()
    this.instanceId = randomBytes(6).toString('base64url')
    this.#options = options
    this.broker = broker
    this.log = log
    this.presence = this.createPresence(undefined)
    this.#admission = new Admission(options, () => this.connectionCount)
  }

  /** @internal a presence tracker on `client` (Redis), or in this process */
  createPresence (client: PresenceTrackerClient): PresenceTracker {
    return new PresenceTracker({
      client,
      prefix: this.#options.redisPrefix,
      ttl: this.#options.presenceTtl,
      log: this.log,
      onExpired: (namespace: string, room: string, entry: PresenceEntry) => {
        this.#namespaces.get(namespace)?.[kPresenceExpired](room, entry)
      }
    })
  }

  /** Whether the broker reaches the other instances now (`up` always without Redis). */
  get brokerStatus (): BrokerStatus {
    return this.broker.status
  }

  /** Connections open on this instance, all namespaces together. */
  get connectionCount (): number {
    let count = 0
    for (const namespace of this.#namespaces.values()) count += namespace.size
    return count
  }

  /** Messages dropped for slow consumers (`slowConsumer: 'drop'`) on this instance. */
  get droppedMessages (): number {
    return this.#counters.droppedMessages
  }

  /** Whether `app.close()` has begun: new upgrades are refused with 503. */
  get closing (): boolean {
    return this.#closing
  }

  /** Connections closed with 4001 for reading too slowly (`slowConsumer: 'close'`) on this instance. */
  get slowConsumersClosed (): number {
    return this.#counters.slowConsumersClosed
  }

  /** Heartbeat timers running (one per distinct setting in use), for leak checks. */
  get heartbeatTimers (): number {
    return this.#heartbeats.running
  }

  /**
   * The namespace of a WebSocket route, by path or by the route value given
   * to `app.ws()`. Throws FST_RT_UNKNOWN_NAMESPACE for one never declared.
   */
  namespace<E extends EventMap = EventMap> (route: string | { path: string }): Namespace<E> {
    const namespace = typeof route === 'string' ? this.#namespaces.get(route) : this.#byRoute.get(route)
    if (namespace === undefined) throw new FST_RT_UNKNOWN_NAMESPACE(typeof route === 'string' ? route : String(route?.path))
    return namespace as Namespace<E>
  }

  /** Every namespace declared on this instance. */
  namespaces (): Namespace[] {
    return [...this.#namespaces.values()]
  }

  /**
   * Closes every connection of a user, on every instance, with `code`
   * (default 4403, DISCONNECTED). Resolves once the command has left this
   * instance.
   */
  disconnectUser (userId: string, code: number = CloseCode.DISCONNECTED, reason = 'disconnected'): Promise<void> {
    return this.broker.publishUserCommand({ kind: 'disconnect', userId, code, reason })
  }

  /** Connections of a user on this instance. */
  userConnections (userId: string): AnyConnection[] {
    return [...(this.#admission.userConnections(userId) ?? [])]
  }

  /** @internal BrokerHost */
  deliver (packet: BroadcastPacket): number {
    return this.#namespaces.get(packet.namespace)?.[kDeliver](packet) ?? 0
  }

  /** @internal BrokerHost */
  applyUserCommand (command: UserCommand): number {
    const connections = this.#admission.userConnections(command.userId)
    if (connections === undefined) return 0
    let count = 0
    for (const conn of [...connections]) {
      conn.close(command.code, command.reason)
      count++
    }
    return count
  }

  /** @internal BrokerHost */
  brokerStatusChanged (status: BrokerStatus): void {
    if (status === 'down') this.log.warn({ broker: this.broker.kind }, 'realtime broker down: cross-instance delivery paused, local delivery goes on')
    else this.log.info({ broker: this.broker.kind }, 'realtime broker up: cross-instance delivery resumed')
    this.emit(`broker:${status}`)
  }

  /** @internal NamespaceHost */
  publishFailed (namespace: string, err: unknown): void {
    this.log.warn({ err, namespace }, 'realtime publish to other instances failed; local delivery done')
  }

  /** @internal NamespaceHost */
  connectionRemoved (conn: AnyConnection): void {
    this.#admission.remove(conn)
  }

  /** @internal declares a WebSocket route on `instance` (which may be an encapsulated child) */
  addRoute (instance: FastifyInstance, path: string, definition: AnyRouteDefinition): Namespace<any> {
    if (definition === null || typeof definition !== 'object') throw new FST_RT_INVALID_OPTION('route', 'an object')
    if (typeof path !== 'string' || !path.startsWith('/')) throw new FST_RT_INVALID_OPTION('path', "a string starting with '/'")
    const fullPath = joinPath(instance.prefix, path)
    if (this.#namespaces.has(fullPath)) throw new FST_RT_INVALID_OPTION(`route ${fullPath}`, 'declared once')

    const heartbeat = resolveHeartbeat(`${fullPath} heartbeat`, definition.heartbeat, this.#options.heartbeat)
    const lifecycle = {
      onOpen: definition.onOpen as RouteRuntime['onOpen'],
      onClose: definition.onClose as RouteRuntime['onClose'],
      maxQueuedMessages: this.#options.maxQueuedMessages,
      keepRequest: definition.keepRequest === true,
      limits: {
        maxBufferedBytes: definition.maxBufferedBytes === undefined
          ? this.#options.maxBufferedBytes
          : positiveInteger(`${fullPath} maxBufferedBytes`, definition.maxBufferedBytes),
        slowConsumer: definition.slowConsumer === undefined
          ? this.#options.slowConsumer
          : resolveSlowConsumer(`${fullPath} slowConsumer`, definition.slowConsumer),
        rateLimit: definition.rateLimit === undefined
          ? this.#options.rateLimit
          : resolveRateLimit(`${fullPath} rateLimit`, definition.rateLimit),
        maxRoomsPerConnection: this.#options.maxRoomsPerConnection,
        maxRoomNameLength: this.#options.maxRoomNameLength,
        canJoin: definition.canJoin as RouteLimits['canJoin'],
        counters: this.#counters
      },
      heartbeat: heartbeat === false ? undefined : this.#heartbeats.group(heartbeat.interval, heartbeat.timeout)
    }
    let runtime: RouteRuntime
    if (definition.raw === true) {
      if (typeof definition.onMessage !== 'function') throw new FST_RT_INVALID_OPTION(`${fullPath} onMessage`, 'a function')
      runtime = new RawRouteRuntime(definition.onMessage as RawRouteDefinition['onMessage'], lifecycle)
    } else {
      runtime = new JsonRouteRuntime(compileMessages(fullPath, definition.messages as Record<string, unknown> | undefined), lifecycle)
    }
    const presence = definition.presence === undefined || definition.presence === false
      ? undefined
      : { events: definition.presence !== true && definition.presence.events === true }
    const namespace = new Namespace<any>(fullPath, this, presence)
    this.#namespaces.set(fullPath, namespace)
    this.#byRoute.set(definition, namespace)

    const origins = definition.allowedOrigins === undefined
      ? this.#options.allowedOrigins
      : resolveOrigins(`${fullPath} allowedOrigins`, definition.allowedOrigins)
    const route: Record<string, unknown> = {}
    for (const key of FASTIFY_ROUTE_KEYS) {
      if (definition[key] !== undefined) route[key] = definition[key]
    }
    // Cheap refusals first (origin, capacity), before the route's own hooks; the
    // per-user cap last, once the auth hooks have put the user on the request.
    const first = [...(origins === undefined ? [] : [checkOrigin(origins)]), this.#admission.checkCapacity]
    route.onRequest = [...first, ...toArray(route.onRequest)]
    if (this.#options.maxConnectionsPerUser > 0) route.preHandler = [...toArray(route.preHandler), this.#admission.checkUserCapacity]

    const realtime = this
    const log = instance.log
    instance.route({
      ...route,
      method: 'GET',
      url: path,
      websocket: true,
      handler (socket: WebSocket, request: FastifyRequest) {
        realtime.#accept(namespace, runtime, socket, request, log)
      }
    } as unknown as RouteOptions)
    return namespace
  }

  #accept (namespace: Namespace<any>, runtime: RouteRuntime, socket: WebSocket, request: FastifyRequest,
    log: FastifyBaseLogger): void {
    clearUpgradeTimer(request.raw)
    releaseUpgradeObjects(socket, request)
    // The client may have reset the TCP connection while the hooks ran; its
    // 'close' has been emitted already, so ws would never report this socket closed.
    if (request.raw.socket.destroyed) {
      socket.terminate()
      return
    }
    if (this.#closing) {
      socket.close(CloseCode.GOING_AWAY, 'server shutting down')
      return
    }
    const user = (request as { user?: unknown }).user
    const userId = this.#options.userId(user)
    const conn = new Connection(`${this.instanceId}.${(++this.#sequence).toString(36)}`, namespace, runtime, socket, request, userId, log)
    attachSocket(socket, conn)
    this.#admission.add(conn)
    conn[kOpen](namespace[kAdd](conn))
  }

  /** @internal preClose: refuse new connections, close open ones with 1001, wait for them within closeTimeout */
  async closeConnections (): Promise<void> {
    this.#closing = true
    this.#heartbeats.stop()
    const closed: Promise<void>[] = []
    for (const namespace of this.#namespaces.values()) {
      for (const conn of namespace.connections()) {
        closed.push(new Promise((resolve) => conn.socket.once('close', () => resolve())))
        conn.close(CloseCode.GOING_AWAY, 'server shutting down')
      }
    }
    if (closed.length === 0) return
    const allClosed = Promise.all(closed)
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<void>((resolve) => { timer = setTimeout(resolve, this.#options.closeTimeout) })
    await Promise.race([allClosed, timedOut])
    clearTimeout(timer)
    // Peers that never answered the close frame: drop them; their 'close' follows at once.
    for (const namespace of this.#namespaces.values()) {
      for (const conn of namespace.connections()) conn.terminate()
    }
    await allClosed
  }
}

function toArray (value: unknown): unknown[] {
  if (value === undefined) return []
  return Array.isArray(value) ? value : [value]
}

function joinPath (prefix: string, path: string): string {
  if (prefix === '' || prefix === '/') return path
  return path === '/' ? prefix : prefix + path
}
