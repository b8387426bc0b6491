import { performance } from 'node:perf_hooks'
import type { Attributes, BatchObservableCallback, Counter, Histogram, Meter, ObservableGauge, UpDownCounter } from '@opentelemetry/api'
import type { Connection } from './connection.js'
import type { RequestId } from './protocol/envelope.js'
import { AttributeCache, brokerGauge, getMeter, instrument, meterRecords } from './metrics.js'
import {
  brokerDownChannel, brokerUpChannel, connectionCloseChannel, connectionOpenChannel, messageChannel,
  traceHandler, traceSettled, type MessageTraceContext
} from './tracing.js'

type AnyConnection = Connection<any, any>
type Handler = (conn: any, data: unknown) => unknown

/**
 * The plugin's instruments, created once when it registers (from the
 * MeterProvider set then), and the broker-state gauge's callback, removed
 * when the app closes.
 */
export class HostTelemetry {
  /** False without an SDK: nothing is measured or recorded. */
  readonly enabled: boolean
  readonly meter: Meter
  readonly connectionsOpen: UpDownCounter
  readonly upgrades: Counter
  readonly messages: Counter
  readonly messageDuration: Histogram
  readonly events: Counter
  readonly deliveries: Counter
  readonly slowConsumersClosed: Counter
  readonly slowConsumerDrops: Counter
  readonly rateLimited: Counter
  readonly heartbeatTerminations: Counter
  readonly brokerOutages: Counter
  readonly #routes = new Map<string, RouteTelemetry>()
  readonly #brokers = new AttributeCache<string>((broker) => ({ broker }))
  #gauge: ObservableGauge | undefined
  #observe: BatchObservableCallback | undefined

  constructor (meter: Meter = getMeter()) {
    this.meter = meter
    this.enabled = meterRecords(meter)
    this.connectionsOpen = instrument(meter, 'connectionsOpen')
    this.upgrades = instrument(meter, 'upgrades')
    this.messages = instrument(meter, 'messages')
    this.messageDuration = instrument(meter, 'messageDuration')
    this.events = instrument(meter, 'events')
    this.deliveries = instrument(meter, 'deliveries')
    this.slowConsumersClosed = instrument(meter, 'slowConsumersClosed')
    this.slowConsumerDrops = instrument(meter, 'slowConsumerDrops')
    this.rateLimited = instrument(meter, 'rateLimited')
    this.heartbeatTerminations = instrument(meter, 'heartbeatTerminations')
    this.brokerOutages = instrument(meter, 'brokerOutages')
  }

  /** The telemetry of a route path, created on first use. */
  route (path: string): RouteTelemetry {
    let route = this.#routes.get(path)
    if (route === undefined) this.#routes.set(path, route = new RouteTelemetry(this, path))
    return route
  }

  /** Observes the broker's state on every collection, until `stop()`. */
  observeBroker (kind: string, status: () => 'up' | 'down'): void {
    if (!this.enabled) return
    const gauge = this.#gauge = brokerGauge(this.meter)
    const attributes = this.#brokers.get(kind)
    this.#observe = (result) => { result.observe(gauge, status() === 'up' ? 1 : 0, attributes) }
    this.meter.addBatchObservableCallback(this.#observe, [gauge])
  }

  /** The broker went up or down: the outage counter, and the broker channels. */
  brokerStatusChanged (kind: string, status: 'up' | 'down'): void {
    if (status === 'down' && this.enabled) this.brokerOutages.add(1, this.#brokers.get(kind))
    const channel = status === 'up' ? brokerUpChannel : brokerDownChannel
    if (channel.hasSubscribers) channel.publish({ broker: kind })
  }

  /** The app is closing: its gauge stops reporting. */
  stop (): void {
    if (this.#observe !== undefined) this.meter.removeBatchObservableCallback(this.#observe, [this.#gauge!])
    this.#observe = undefined
  }
}

const OUTCOME_HANDLED = 'handled'
// Joins the parts of an attribute key; no message type or code contains it.
const SEP = '\u0000'

/**
 * One route's recordings, with its attribute objects built once: by message
 * type, by outcome and wire code, by HTTP status.
 */
export class RouteTelemetry {
  readonly path: string
  readonly #host: HostTelemetry
  readonly #enabled: boolean
  readonly #route: Attributes
  readonly #accepted: Attributes
  readonly #refusedUpgrades: AttributeCache<number>
  readonly #eventTargets: { connection: Attributes, broadcast: Attributes }
  readonly #origins: { local: Attributes, remote: Attributes }
  // Keyed outcome, type, code joined by SEP; `type` is a declared type or empty, so the keys are bounded.
  readonly #outcomes: AttributeCache<string>
  readonly #types: AttributeCache<string>

  constructor (host: HostTelemetry, path: string) {
    this.#host = host
    this.#enabled = host.enabled
    this.path = path
    this.#route = Object.freeze({ route: path })
    this.#accepted = Object.freeze({ route: path, outcome: 'accepted', 'http.response.status_code': 101 })
    this.#refusedUpgrades = new AttributeCache((status) => ({ route: path, outcome: 'refused', 'http.response.status_code': status }))
    this.#eventTargets = {
      connection: Object.freeze({ route: path, target: 'connection' }),
      broadcast: Object.freeze({ route: path, target: 'broadcast' })
    }
    this.#origins = {
      local: Object.freeze({ route: path, origin: 'local' }),
      remote: Object.freeze({ route: path, origin: 'remote' })
    }
    this.#outcomes = new AttributeCache((key) => {
      const [outcome, type, code] = key.split(SEP) as [string, string, string]
      const attributes: Attributes = { route: path }
      if (type !== '') attributes['message.type'] = type
      attributes.outcome = outcome
      if (code !== '') attributes['error.type'] = code
      return attributes
    })
    this.#types = new AttributeCache((type) => type === '' ? { route: path } : { route: path, 'message.type': type })
  }

  /** A connection was accepted on the route. */
  opened (conn: AnyConnection): void {
    if (this.#enabled) {
      this.#host.connectionsOpen.add(1, this.#route)
      this.#host.upgrades.add(1, this.#accepted)
    }
    if (connectionOpenChannel.hasSubscribers) connectionOpenChannel.publish({ connection: conn, route: this.path })
  }

  /** A connection of the route closed. */
  closed (conn: AnyConnection, code: number, reason: string): void {
    if (this.#enabled) this.#host.connectionsOpen.add(-1, this.#route)
    if (connectionCloseChannel.hasSubscribers) connectionCloseChannel.publish({ connection: conn, route: this.path, code, reason })
  }

  /** An upgrade request on the route was answered with an HTTP status instead of 101. */
  upgradeRefused (status: number): void {
    if (this.#enabled) this.#host.upgrades.add(1, this.#refusedUpgrades.get(status))
  }

  /**
   * An inbound frame answered before any handler ran, with wire error `code`;
   * `type` only when it is declared on the route (so a client cannot grow the attribute values).
   */
  refused (type: string | undefined, code: string): void {
    if (this.#enabled) this.#host.messages.add(1, this.#outcomes.get(`refused${SEP}${type ?? ''}${SEP}${code}`))
  }

  /** A frame handled without a declared handler: a ping, or a raw route's frame. */
  handled (type: string | undefined): void {
    if (this.#enabled) this.#host.messages.add(1, this.#outcomes.get(`${OUTCOME_HANDLED}${SEP}${type ?? ''}${SEP}`))
  }

  /** A message refused with RATE_LIMITED (`type` when it is a message type's budget). */
  rateLimited (type: string | undefined): void {
    if (this.#enabled) this.#host.rateLimited.add(1, this.#types.get(type ?? ''))
  }

  /**
   * A declared message is about to run its handler: what follows it, or
   * undefined when neither metrics nor tracing listen (the common case, at no cost).
   */
  message (conn: AnyConnection, type: string, id: RequestId | undefined): MessageObservation | undefined {
    const traced = messageChannel.hasSubscribers
    if (!this.#enabled && !traced) return undefined
    return new MessageObservation(this, traced ? { connection: conn, route: this.path, type, id } : undefined, type)
  }

  /** @internal a message's handling ended */
  finished (type: string, code: string | undefined, started: number): void {
    if (!this.#enabled) return
    const host = this.#host
    host.messages.add(1, this.#outcomes.get(code === undefined ? `${OUTCOME_HANDLED}${SEP}${type}${SEP}` : `failed${SEP}${type}${SEP}${code}`))
    host.messageDuration.record(performance.now() - started, this.#types.get(type))
  }

  /** An event emitted to one connection. */
  emitted (): void {
    if (this.#enabled) this.#host.events.add(1, this.#eventTargets.connection)
  }

  /** A broadcast emitted from this instance. */
  broadcast (): void {
    if (this.#enabled) this.#host.events.add(1, this.#eventTargets.broadcast)
  }

  /** A broadcast reached `count` connections here: one recording, whatever the count. */
  delivered (count: number, local: boolean): void {
    if (this.#enabled && count > 0) this.#host.deliveries.add(count, local ? this.#origins.local : this.#origins.remote)
  }

  slowConsumerClosed (): void {
    if (this.#enabled) this.#host.slowConsumersClosed.add(1, this.#route)
  }

  slowConsumerDropped (): void {
    if (this.#enabled) this.#host.slowConsumerDrops.add(1, this.#route)
  }

  heartbeatTerminated (): void {
    if (this.#enabled) this.#host.heartbeatTerminations.add(1, this.#route)
  }
}

/** One handler run, observed: its duration and outcome, and the message tracing channel. */
export class MessageObservation {
  readonly #route: RouteTelemetry
  readonly #context: MessageTraceContext | undefined
  readonly #type: string
  readonly #started = performance.now()

  constructor (route: RouteTelemetry, context: MessageTraceContext | undefined, type: string) {
    this.#route = route
    this.#context = context
    this.#type = type
  }

  /** Calls the handler, inside the tracing channel's start / end when someone listens. */
  run (handler: Handler, conn: AnyConnection, data: unknown): unknown {
    return this.#context === undefined ? handler(conn, data) : traceHandler(this.#context, handler, conn, data)
  }

  /**
   * The message was answered: `code` is the wire error code it was answered
   * with, if any; `settled` tells a promise's outcome to the tracing channel
   * (`rejected` with the error as `value`).
   */
  finish (code: string | undefined, settled?: { value: unknown, rejected: boolean }): void {
    if (settled !== undefined && this.#context !== undefined) traceSettled(this.#context, settled.value, settled.rejected)
    this.#route.finished(this.#type, code, this.#started)
  }
}
