import { performance } from 'node:perf_hooks'
import type { Counter, Histogram } from '@opentelemetry/api'
import { getMeter, instrument, meterRecords } from '../metrics.js'

const OK = Object.freeze({ outcome: 'ok' })
const FAILED = Object.freeze({ outcome: 'failed' })

/** The Redis publisher's instruments (see lib/metrics.ts), from the MeterProvider set when it was created. */
export class RedisMetrics {
  /** False without an SDK: nothing is timed or recorded. */
  readonly enabled: boolean
  readonly #toNobody: Counter
  readonly #duration: Histogram

  constructor () {
    const meter = getMeter()
    this.enabled = meterRecords(meter)
    this.#toNobody = instrument(meter, 'publishedToNobody')
    this.#duration = instrument(meter, 'publishDuration')
  }

  /** A publish Redis answered, with its receiver count. */
  published (started: number, receivers: number): void {
    this.#duration.record(performance.now() - started, OK)
    if (receivers === 0) this.#toNobody.add(1)
  }

  /** A publish refused or not answered in time. */
  failed (started: number): void {
    this.#duration.record(performance.now() - started, FAILED)
  }
}
