import { createNoopMeter, metrics, type Attributes, type Counter, type Histogram, type Meter, type ObservableGauge, type UpDownCounter } from '@opentelemetry/api'

/*
 * Every instrument the plugin records, declared once: docs/observability.md
 * lists the same table (test/docs.test.ts checks both ways). Instruments go
 * through OpenTelemetry's API, a no-op until the application installs an
 * SDK's MeterProvider; the meter is taken when the plugin registers, so the
 * provider must be set before that.
 *
 * Cost without an SDK: every recording site checks one boolean first, and
 * attribute objects are built once per route, message type and code, never
 * per message. A broadcast adds its delivery count once, not once per recipient.
 */

/** The meter's name (the instrumentation scope). */
export const METER_NAME = 'fastify-realtime'

/** The kinds of instrument the table uses. */
export type InstrumentKind = 'counter' | 'updowncounter' | 'histogram' | 'gauge'

/** One instrument: what the docs list about it. */
export interface InstrumentSpec {
  readonly name: string
  readonly kind: InstrumentKind
  readonly unit: string
  readonly description: string
  /** Attribute keys it may carry (some only on some recordings, as documented). */
  readonly attributes: readonly string[]
}

/** Reply latency buckets (ms): sub-millisecond handlers up to a slow database. */
const LATENCY_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]

/** The instruments, by the key the code records them under. */
export const INSTRUMENTS = {
  connectionsOpen: {
    name: 'fastify_realtime.connections.open',
    kind: 'updowncounter',
    unit: '{connection}',
    description: 'WebSocket connections open on this instance',
    attributes: ['route']
  },
  upgrades: {
    name: 'fastify_realtime.upgrades',
    kind: 'counter',
    unit: '{upgrade}',
    description: 'Upgrade requests on the plugin\'s routes, accepted (101) or refused with an HTTP status',
    attributes: ['route', 'outcome', 'http.response.status_code']
  },
  messages: {
    name: 'fastify_realtime.messages.inbound',
    kind: 'counter',
    unit: '{message}',
    description: 'Inbound frames: handled, refused before the handler, or failed in it (with the wire error code)',
    attributes: ['route', 'message.type', 'outcome', 'error.type']
  },
  messageDuration: {
    name: 'fastify_realtime.messages.duration',
    kind: 'histogram',
    unit: 'ms',
    description: 'Time from dispatching a message to its handler until its answer (reply or error) is written',
    attributes: ['route', 'message.type']
  },
  events: {
    name: 'fastify_realtime.events.outbound',
    kind: 'counter',
    unit: '{event}',
    description: 'Events emitted on this instance: to one connection, or broadcast (once, whatever the recipients)',
    attributes: ['route', 'target']
  },
  deliveries: {
    name: 'fastify_realtime.deliveries',
    kind: 'counter',
    unit: '{message}',
    description: 'Broadcast frames handed to connections of this instance, from this instance or another',
    attributes: ['route', 'origin']
  },
  slowConsumersClosed: {
    name: 'fastify_realtime.slow_consumers.closed',
    kind: 'counter',
    unit: '{connection}',
    description: 'Connections closed with 4001 for reading too slowly (slowConsumer: \'close\')',
    attributes: ['route']
  },
  slowConsumerDrops: {
    name: 'fastify_realtime.slow_consumers.dropped',
    kind: 'counter',
    unit: '{message}',
    description: 'Outbound messages dropped for clients reading too slowly (slowConsumer: \'drop\')',
    attributes: ['route']
  },
  rateLimited: {
    name: 'fastify_realtime.rate_limit.refusals',
    kind: 'counter',
    unit: '{message}',
    description: 'Inbound messages refused with RATE_LIMITED (the connection\'s budget, or a message type\'s)',
    attributes: ['route', 'message.type']
  },
  heartbeatTerminations: {
    name: 'fastify_realtime.heartbeat.terminations',
    kind: 'counter',
    unit: '{connection}',
    description: 'Connections terminated for not answering a heartbeat ping in time',
    attributes: ['route']
  },
  brokerUp: {
    name: 'fastify_realtime.broker.up',
    kind: 'gauge',
    unit: '1',
    description: 'Whether the broker reaches the other instances: 1 up, 0 down',
    attributes: ['broker']
  },
  brokerOutages: {
    name: 'fastify_realtime.broker.outages',
    kind: 'counter',
    unit: '{outage}',
    description: 'Times the broker went down',
    attributes: ['broker']
  },
  publishedToNobody: {
    name: 'fastify_realtime.redis.published_to_nobody',
    kind: 'counter',
    unit: '{message}',
    description: 'Redis publishes no other instance was subscribed to',
    attributes: []
  },
  publishDuration: {
    name: 'fastify_realtime.redis.publish.duration',
    kind: 'histogram',
    unit: 'ms',
    description: 'Time a Redis publish took to be answered, or to fail',
    attributes: ['outcome']
  }
} as const satisfies Record<string, InstrumentSpec>

/** The table as a list, in declaration order. */
export const INSTRUMENT_LIST: readonly InstrumentSpec[] = Object.values(INSTRUMENTS)

type Key = keyof typeof INSTRUMENTS
type Synchronous = { [K in Key]: (typeof INSTRUMENTS)[K]['kind'] extends 'gauge' ? never : K }[Key]
type InstrumentOf<K extends Synchronous> = (typeof INSTRUMENTS)[K]['kind'] extends 'histogram'
  ? Histogram
  : (typeof INSTRUMENTS)[K]['kind'] extends 'updowncounter' ? UpDownCounter : Counter

/** The plugin's meter, from the global MeterProvider as it is now. */
export function getMeter (): Meter {
  return metrics.getMeter(METER_NAME)
}

/** Whether `meter` records anything: false for the API's no-op meter (no SDK installed). */
export function meterRecords (meter: Meter): boolean {
  return meter !== createNoopMeter()
}

/** Creates one synchronous instrument of the table on `meter`. */
export function instrument<K extends Synchronous> (meter: Meter, key: K): InstrumentOf<K> {
  const spec: InstrumentSpec = INSTRUMENTS[key]
  const options = { unit: spec.unit, description: spec.description }
  if (spec.kind === 'histogram') {
    return meter.createHistogram(spec.name, { ...options, advice: { explicitBucketBoundaries: LATENCY_BUCKETS } }) as InstrumentOf<K>
  }
  if (spec.kind === 'updowncounter') return meter.createUpDownCounter(spec.name, options) as InstrumentOf<K>
  return meter.createCounter(spec.name, options) as InstrumentOf<K>
}

/** Creates the broker-state gauge on `meter`. */
export function brokerGauge (meter: Meter): ObservableGauge {
  const spec = INSTRUMENTS.brokerUp
  return meter.createObservableGauge(spec.name, { unit: spec.unit, description: spec.description })
}

/** Attribute objects built once and reused: OpenTelemetry reads them, never keeps or changes them. */
export class AttributeCache<K> {
  readonly #map = new Map<K, Attributes>()
  readonly #build: (key: K) => Attributes

  constructor (build: (key: K) => Attributes) {
    this.#build = build
  }

  get (key: K): Attributes {
    let attributes = this.#map.get(key)
    if (attributes === undefined) this.#map.set(key, attributes = Object.freeze(this.#build(key)))
    return attributes
  }
}
