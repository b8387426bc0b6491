import { EventEmitter } from 'node:events'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { AsyncApiDocument } from './asyncapi.js'
import type { Broker, BrokerStatus } from './broker.js'
import type { Connection } from './connection.js'
import { FST_RT_UNKNOWN_NAMESPACE } from './errors.js'
import type { RealtimeHost } from './host.js'
import { injectConnection, type InjectedClient, type InjectOptions } from './inject.js'
import type { HookRegistry, MessageHookName } from './message-hooks.js'
import type { Namespace } from './namespace.js'
import { CloseCode } from './protocol/close-codes.js'
import type { EventMap } from './route.js'
import { kAdmission } from './symbols.js'

type AnyConnection = Connection<any, any>

/**
 * The `app.realtime` decorator: namespaces, user-wide commands, broker
 * status and counters. One per plugin registration. Emits `broker:down` and
 * `broker:up` when the broker loses or regains the other instances. Its
 * public type is `RealtimeDecorator` (types.ts); the state behind it is the
 * plugin's own (host.ts).
 */
export class Realtime extends EventEmitter {
  readonly #host: RealtimeHost
  readonly #app: FastifyInstance
  readonly #hooks: HookRegistry
  readonly #document: () => AsyncApiDocument

  constructor (host: RealtimeHost, app: FastifyInstance, hooks: HookRegistry, document: () => AsyncApiDocument) {
    super()
    this.#host = host
    this.#app = app
    this.#hooks = hooks
    this.#document = document
    host.events = this
  }

  /**
   * Adds a message hook to the routes of the context the plugin was
   * registered in and its descendants (`child.realtime.addHook()` adds to a
   * child context's routes only).
   */
  addHook (name: MessageHookName, hook: (...args: any[]) => unknown): this {
    this.#hooks.add(this.#app, name, hook)
    return this
  }

  /** The AsyncAPI 3.0 document of the routes declared so far, a fresh copy each call. */
  asyncapi (): AsyncApiDocument {
    return this.#document()
  }

  /** This instance's id, a prefix of every connection id it hands out. */
  get instanceId (): string {
    return this.#host.instanceId
  }

  /** The broker carrying broadcasts between instances. */
  get broker (): Broker {
    return this.#host.broker
  }

  /** The plugin's logger. */
  get log (): FastifyBaseLogger {
    return this.#host.log
  }

  /** Whether the broker reaches the other instances now (`up` always without Redis). */
  get brokerStatus (): BrokerStatus {
    return this.#host.broker.status
  }

  /** Connections open on this instance, all namespaces together. */
  get connectionCount (): number {
    return this.#host.connectionCount
  }

  /** Messages dropped for slow consumers (`slowConsumer: 'drop'`) on this instance. */
  get droppedMessages (): number {
    return this.#host.counters.droppedMessages
  }

  /** Connections closed with 4001 for reading too slowly (`slowConsumer: 'close'`) on this instance. */
  get slowConsumersClosed (): number {
    return this.#host.counters.slowConsumersClosed
  }

  /** Whether `app.close()` has begun: new upgrades are refused with 503. */
  get closing (): boolean {
    return this.#host.closing
  }

  /** Heartbeat timers running (one per distinct setting in use), for leak checks. */
  get heartbeatTimers (): number {
    return this.#host.heartbeats.running
  }

  /**
   * The namespace of a WebSocket route, by path or by the route value given
   * to `app.ws()`. Throws FST_RT_UNKNOWN_NAMESPACE for one never declared.
   */
  namespace<E extends EventMap = EventMap> (route: string | { path: string }): Namespace<E> {
    const namespace = typeof route === 'string' ? this.#host.namespaces.get(route) : this.#host.byRoute.get(route)
    if (namespace === undefined) throw new FST_RT_UNKNOWN_NAMESPACE(typeof route === 'string' ? route : String(route?.path))
    return namespace as Namespace<E>
  }

  /** Every namespace declared on this instance. */
  namespaces (): Namespace[] {
    return [...this.#host.namespaces.values()]
  }

  /**
   * Closes every connection of a user, on every instance, with `code`
   * (default 4403, DISCONNECTED). Resolves once the command has left this
   * instance.
   */
  disconnectUser (userId: string, code: number = CloseCode.DISCONNECTED, reason = 'disconnected'): Promise<void> {
    return this.#host.disconnectUser({ kind: 'disconnect', userId, code, reason })
  }

  /** @internal the connection caps' books, for leak checks */
  get [kAdmission] (): RealtimeHost['admission'] {
    return this.#host.admission
  }

  /** Connections of a user on this instance. */
  userConnections (userId: string): AnyConnection[] {
    return [...(this.#host.admission.userConnections(userId) ?? [])]
  }

  /**
   * Opens a connection on a route without a port (through
   * `app.injectWS`), for tests: the route's hooks run, and a refused
   * upgrade rejects with an InjectUpgradeError carrying its `statusCode`.
   */
  inject (route: string | { path: string }, options?: InjectOptions): Promise<InjectedClient<any>> {
    const path = typeof route === 'string' ? route : this.namespace(route).path
    return injectConnection(this.#app, path, options)
  }
}

/**
 * `app.realtime` as a child context sees it: the same decorator, except
 * that `addHook` adds to that context, like Fastify's own `addHook`.
 */
export function contextView (realtime: Realtime, context: FastifyInstance, hooks: HookRegistry): Realtime {
  // Methods are bound to the decorator itself: its private state is not on the view.
  const bound = new WeakMap<(...args: any[]) => unknown, (...args: any[]) => unknown>()
  const view: Realtime = new Proxy(realtime, {
    get (target, key) {
      if (key === 'addHook') return addHook
      const value: unknown = Reflect.get(target, key, target)
      if (typeof value !== 'function') return value
      const method = value as (...args: any[]) => unknown
      let fn = bound.get(method)
      if (fn === undefined) {
        fn = method.bind(target)
        bound.set(method, fn)
      }
      return fn
    }
  })
  function addHook (name: MessageHookName, hook: (...args: any[]) => unknown): Realtime {
    hooks.add(context, name, hook)
    return view
  }
  return view
}
