import type { FastifyRequest } from 'fastify'
import type { Connection } from './connection.js'
import type { HeartbeatGroup } from './heartbeat.js'
import type { ResolvedRateLimit } from './rate-limit.js'
import { parseEnvelope, ProtocolFault } from './parse-envelope.js'
import { encodeError, encodePong, encodeReply, type RequestId } from './protocol/envelope.js'
import type { CompiledMessage } from './route.js'
import type { MessageObservation, RouteTelemetry } from './telemetry.js'
import { kOverLimit, kTake } from './symbols.js'
import { RealtimeError, WireErrorCode, type WireErrorDetail } from './protocol/wire-errors.js'

type AnyConnection = Connection<any, any>

/** How many validation problems an error answer lists at most. */
const MAX_DETAILS = 10

/** A route's resource limits, resolved against the plugin's. */
export interface RouteLimits {
  readonly maxBufferedBytes: number
  readonly slowConsumer: 'close' | 'drop'
  readonly rateLimit: ResolvedRateLimit | undefined
  readonly maxRoomsPerConnection: number
  readonly maxRoomNameLength: number
  readonly canJoin: ((conn: AnyConnection, room: string) => boolean | Promise<boolean>) | undefined
  /** Shared with the plugin: what the slow-consumer policy did, all routes together. */
  readonly counters: { droppedMessages: number, slowConsumersClosed: number }
}

/** What a registered route does with inbound frames and lifecycle events. */
export interface RouteRuntime {
  readonly onOpen: ((conn: AnyConnection, request: FastifyRequest) => void | Promise<void>) | undefined
  readonly onClose: ((conn: AnyConnection, code: number, reason: string) => void | Promise<void>) | undefined
  readonly maxQueuedMessages: number
  /** The heartbeat timer the route's connections share, if any. */
  readonly heartbeat: HeartbeatGroup | undefined
  /** Whether connections keep their upgrade request after `onOpen`. */
  readonly keepRequest: boolean
  readonly limits: RouteLimits
  /** The route's metrics and diagnostics channels. */
  readonly telemetry: RouteTelemetry
  handleFrame (conn: AnyConnection, data: Buffer, isBinary: boolean): void
  /** Answers a frame that will not be handled (over budget), with its id when it has one. */
  refuseFrame (conn: AnyConnection, data: Buffer, isBinary: boolean, code: string, message: string): void
}

interface Lifecycle {
  onOpen?: RouteRuntime['onOpen']
  onClose?: RouteRuntime['onClose']
  maxQueuedMessages: number
  heartbeat: HeartbeatGroup | undefined
  keepRequest: boolean
  limits: RouteLimits
  telemetry: RouteTelemetry
}

/** What every route runtime holds: its lifecycle hooks and limits. */
abstract class BaseRouteRuntime implements RouteRuntime {
  readonly onOpen: RouteRuntime['onOpen']
  readonly onClose: RouteRuntime['onClose']
  readonly maxQueuedMessages: number
  readonly heartbeat: HeartbeatGroup | undefined
  readonly keepRequest: boolean
  readonly limits: RouteLimits
  readonly telemetry: RouteTelemetry

  constructor (lifecycle: Lifecycle) {
    this.onOpen = lifecycle.onOpen
    this.onClose = lifecycle.onClose
    this.maxQueuedMessages = lifecycle.maxQueuedMessages
    this.heartbeat = lifecycle.heartbeat
    this.keepRequest = lifecycle.keepRequest
    this.limits = lifecycle.limits
    this.telemetry = lifecycle.telemetry
  }

  abstract handleFrame (conn: AnyConnection, data: Buffer, isBinary: boolean): void
  abstract refuseFrame (conn: AnyConnection, data: Buffer, isBinary: boolean, code: string, message: string): void
}

/** A route speaking the envelope: parse, validate, dispatch, answer. */
export class JsonRouteRuntime extends BaseRouteRuntime {
  readonly #messages: Map<string, CompiledMessage>

  constructor (messages: Map<string, CompiledMessage>, lifecycle: Lifecycle) {
    super(lifecycle)
    this.#messages = messages
  }

  handleFrame (conn: AnyConnection, data: Buffer, isBinary: boolean): void {
    if (isBinary) {
      conn.send(encodeError(undefined, WireErrorCode.UNSUPPORTED_FRAME, 'Binary frames are not accepted; send JSON text frames'))
      this.telemetry.refused(undefined, WireErrorCode.UNSUPPORTED_FRAME)
      return
    }
    const message = parseEnvelope(data.toString())
    if (message instanceof ProtocolFault) {
      conn.send(encodeError(message.id, message.code, message.message, message.details))
      this.telemetry.refused(undefined, message.code)
      return
    }
    const { type, id } = message
    if (type === 'ping') {
      conn.send(encodePong(id))
      this.telemetry.handled('ping')
      return
    }
    const compiled = this.#messages.get(type)
    if (compiled === undefined) {
      conn.send(encodeError(id, WireErrorCode.UNKNOWN_TYPE, `Unknown message type '${type.slice(0, 64)}'`))
      this.telemetry.refused(undefined, WireErrorCode.UNKNOWN_TYPE)
      return
    }
    if (compiled.rateLimit !== undefined) {
      const verdict = conn[kTake](type, compiled.rateLimit)
      if (verdict !== 'taken') {
        conn.send(encodeError(id, WireErrorCode.RATE_LIMITED, `Too many '${type}' messages`))
        this.telemetry.rateLimited(type)
        this.telemetry.refused(type, WireErrorCode.RATE_LIMITED)
        if (verdict === 'exhausted') conn[kOverLimit]()
        return
      }
    }
    if (compiled.validator !== undefined && !compiled.validator.Check(message.data)) {
      conn.send(encodeError(id, WireErrorCode.VALIDATION_FAILED, `Invalid data for '${type}'`,
        validationDetails(compiled, message.data)))
      this.telemetry.refused(type, WireErrorCode.VALIDATION_FAILED)
      return
    }
    const observed = this.telemetry.message(conn, type, id)
    let result: unknown
    try {
      result = observed === undefined ? compiled.handler(conn, message.data) : observed.run(compiled.handler, conn, message.data)
    } catch (err) {
      fail(conn, type, id, err, observed)
      return
    }
    if (result instanceof Promise) {
      result.then((value: unknown) => answer(conn, compiled, type, id, value, observed, true),
        (err: unknown) => fail(conn, type, id, err, observed, true))
    } else {
      answer(conn, compiled, type, id, result, observed)
    }
  }

  refuseFrame (conn: AnyConnection, data: Buffer, isBinary: boolean, code: string, message: string): void {
    // The id is echoed whenever it can be read: also from a frame that would be refused for its content.
    const parsed = isBinary ? undefined : parseEnvelope(data.toString())
    conn.send(encodeError(parsed?.id, code, message))
    this.telemetry.refused(undefined, code)
  }
}

/** A raw route: every frame goes to `onMessage` untouched. */
export class RawRouteRuntime extends BaseRouteRuntime {
  readonly #onMessage: (conn: AnyConnection, data: Buffer, isBinary: boolean) => unknown

  constructor (onMessage: (conn: AnyConnection, data: Buffer, isBinary: boolean) => unknown, lifecycle: Lifecycle) {
    super(lifecycle)
    this.#onMessage = onMessage
  }

  /** A raw protocol has no error frame: an over-budget frame is dropped. */
  refuseFrame (): void {}

  handleFrame (conn: AnyConnection, data: Buffer, isBinary: boolean): void {
    this.telemetry.handled(undefined)
    try {
      const result = this.#onMessage(conn, data, isBinary)
      if (result instanceof Promise) result.catch((err: unknown) => logHandlerError(conn, 'onMessage', err))
    } catch (err) {
      logHandlerError(conn, 'onMessage', err)
    }
  }
}

function validationDetails (compiled: CompiledMessage, data: unknown): WireErrorDetail[] {
  const errors = compiled.validator!.Errors(data)
  const details: WireErrorDetail[] = []
  for (const error of errors) {
    details.push({ path: error.instancePath, message: error.message })
    if (details.length === MAX_DETAILS) break
  }
  return details
}

// `observed` (metrics, tracing) is told once how the message ended; `settled` when its handler returned a promise.
function answer (conn: AnyConnection, compiled: CompiledMessage, type: string, id: RequestId | undefined, value: unknown,
  observed?: MessageObservation, settled = false): void {
  if (id === undefined || conn.closed) {
    observed?.finish(undefined, settled ? { value, rejected: false } : undefined)
    return
  }
  let frame: string
  try {
    frame = encodeReply(id, value, compiled.stringifyReply)
  } catch (err) {
    fail(conn, type, id, err)
    observed?.finish(err instanceof RealtimeError ? err.code : WireErrorCode.INTERNAL, settled ? { value, rejected: false } : undefined)
    return
  }
  conn.send(frame)
  observed?.finish(undefined, settled ? { value, rejected: false } : undefined)
}

function fail (conn: AnyConnection, type: string, id: RequestId | undefined, err: unknown,
  observed?: MessageObservation, settled = false): void {
  const code = err instanceof RealtimeError ? err.code : WireErrorCode.INTERNAL
  if (err instanceof RealtimeError) {
    conn.send(encodeError(id, err.code, err.message, err.details))
  } else {
    logHandlerError(conn, type, err)
    conn.send(encodeError(id, WireErrorCode.INTERNAL, 'Internal error'))
  }
  observed?.finish(code, settled ? { value: err, rejected: true } : undefined)
}

function logHandlerError (conn: AnyConnection, type: string, err: unknown): void {
  conn.log.error({ err, namespace: conn.namespace.path, messageType: type, connectionId: conn.id }, 'realtime handler failed')
}
