import type { Validator } from 'typebox/compile'
import { FST_RT_ACK_CLOSED, FST_RT_ACK_INVALID, FST_RT_ACK_LIMIT, FST_RT_ACK_TIMEOUT } from './errors.js'
import { parseEnvelope, ProtocolFault, type InboundMessage } from './parse-envelope.js'
import { encodeError } from './protocol/envelope.js'
import { RealtimeError, WireErrorCode, type WireErrorDetail } from './protocol/wire-errors.js'

/*
 * `conn.emitWithAck()`: events that ask the client for one answer. The
 * server numbers them per connection with string ids ("s1", "s2", ...)
 * that a bare client echoes as they came, in a `reply` or `error` frame.
 */

/** Options of one `conn.emitWithAck()`. */
export interface AckOptions {
  /**
   * Milliseconds the client has to answer before the promise rejects with
   * FST_RT_ACK_TIMEOUT.
   * @default the plugin's `ackTimeout` (10000)
   */
  timeout?: number
}

/** How many validation problems an ack rejection or a VALIDATION_FAILED answer lists at most. */
const MAX_DETAILS = 10
interface PendingAck {
  readonly event: string
  readonly resolve: (value: unknown) => void
  readonly reject: (err: Error) => void
  readonly timer: NodeJS.Timeout
}

/** The answers one connection awaits, by id, at most `limit` at a time. */
export class PendingAcks {
  readonly #pending = new Map<string, PendingAck>()
  readonly #limit: number
  #next = 0

  /** How many answers are awaited. */
  get size (): number {
    return this.#pending.size
  }

  constructor (limit: number) {
    this.#limit = limit
  }

  /**
   * Awaits the answer to event `event`; returns the id to send it with, or
   * undefined (and `answer` already rejected with FST_RT_ACK_LIMIT) at the limit.
   */
  add (event: string, timeout: number): { id: string | undefined, answer: Promise<unknown> } {
    if (this.#pending.size >= this.#limit) return { id: undefined, answer: Promise.reject(new FST_RT_ACK_LIMIT(String(this.#limit))) }
    const id = `s${++this.#next}`
    const answer = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new FST_RT_ACK_TIMEOUT(event, String(timeout)))
      }, timeout)
      this.#pending.set(id, { event, resolve, reject, timer })
    })
    return { id, answer }
  }

  /**
   * Settles the ack a `reply` or `error` frame answers. An id that is not
   * awaited (unknown, answered already, timed out) is ignored. Returns the
   * frame to send back when the answer fails the event's ack schema.
   */
  answer (message: InboundMessage, validators: ReadonlyMap<string, Validator> | undefined): string | undefined {
    const id = message.id
    const pending = typeof id === 'string' ? this.#pending.get(id) : undefined
    if (pending === undefined) return undefined
    this.#pending.delete(id as string)
    clearTimeout(pending.timer)
    if (message.type === 'error') {
      pending.reject(answeredError(message.error))
      return undefined
    }
    // A reply without `data` (a listener that returned nothing) answers null, as the server's replies do.
    const data = message.data === undefined ? null : message.data
    const validator = validators?.get(pending.event)
    if (validator === undefined || validator.Check(data)) {
      pending.resolve(data)
      return undefined
    }
    const details: WireErrorDetail[] = []
    for (const error of validator.Errors(data)) {
      details.push({ path: error.instancePath, message: error.message })
      if (details.length === MAX_DETAILS) break
    }
    pending.reject(new FST_RT_ACK_INVALID(pending.event, details.map((d) => `${d.path || '/'} ${d.message}`).join('; ')))
    return encodeError(id, WireErrorCode.VALIDATION_FAILED, `Invalid answer to '${pending.event}'`, details)
  }

  /** Rejects every pending ack with FST_RT_ACK_CLOSED and clears its timer. */
  close (): void {
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer)
      pending.reject(new FST_RT_ACK_CLOSED(pending.event))
    }
    this.#pending.clear()
  }
}

/** Whether an inbound frame is a `reply` or `error` (parsed again by handleFrame; only while onOpen runs). */
export function isAnswerFrame (data: Buffer, isBinary: boolean): boolean {
  if (isBinary) return false
  const message = parseEnvelope(data.toString())
  return !(message instanceof ProtocolFault) && (message.type === 'reply' || message.type === 'error')
}

/** Adds the ack id to an encoded event frame `{"type",...}`. */
export function withAckId (frame: string, id: string): string {
  return frame.slice(0, -1) + ',"id":"' + id + '"}'
}

/** The client's `{"type":"error"}` answer as a RealtimeError; INTERNAL where the frame's `error` is malformed. */
function answeredError (error: unknown): RealtimeError {
  const e = (error !== null && typeof error === 'object' ? error : {}) as { code?: unknown, message?: unknown, details?: unknown }
  const code = typeof e.code === 'string' && e.code.length > 0 ? e.code.slice(0, 128) : WireErrorCode.INTERNAL
  const message = typeof e.message === 'string' ? e.message.slice(0, 1024) : code
  return new RealtimeError(code, message, Array.isArray(e.details) ? e.details.slice(0, MAX_DETAILS) as WireErrorDetail[] : undefined)
}
