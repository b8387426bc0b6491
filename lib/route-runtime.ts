import type { FastifyRequest } from 'fastify'
import type { Validator } from 'typebox/compile'
import type { Connection } from './connection.js'
import type { HeartbeatGroup } from './heartbeat.js'
import type { ResolvedRateLimit } from './rate-limit.js'
import { notifyMessageError, runPreMessage, type MessageHooks } from './message-hooks.js'
import { parseEnvelope, ProtocolFault, type InboundMessage } from './parse-envelope.js'
import { encodeError, encodePong, encodeReply } from './protocol/envelope.js'
import type { CompiledMessage } from './route.js'
import type { MessageObservation, RouteTelemetry } from './telemetry.js'
import { kAnswer, kOverLimit, kTake } from './symbols.js'
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
  /** `conn.emitWithAck()`: the default timeout, and how many answers a connection may await. */
  readonly ackTimeout: number
  readonly maxPendingAcks: number
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
  /** Validators of the answers to `emitWithAck()`, by event; undefined on a raw route, which reads no answers. */
  readonly acks: ReadonlyMap<string, Validator> | undefined
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
  acks: ReadonlyMap<string, Validator> | undefined

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

/** A route speaking the envelope: parse, validate, preMessage hooks, dispatch, answer. */
export class JsonRouteRuntime extends BaseRouteRuntime {
  readonly #messages: Map<string, CompiledMessage>
  readonly #resolveHooks: () => MessageHooks
  /** Read at the first message: hooks may be added to the route's contexts until the app is ready. */
  #hooks: MessageHooks | undefined

  constructor (messages: Map<string, CompiledMessage>, lifecycle: Lifecycle, hooks: () => MessageHooks,
    acks: ReadonlyMap<string, Validator> = new Map()) {
    super(lifecycle)
    this.#messages = messages
    this.#resolveHooks = hooks
    this.acks = acks
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
    if (type === 'reply' || type === 'error') {
      // A client's answer to conn.emitWithAck(); one nothing awaits is ignored.
      conn[kAnswer](message)
      this.telemetry.handled(type)
      return
    }
    const hooks = this.#hooks ??= this.#resolveHooks()
    const compiled = this.#messages.get(type)
    if (compiled === undefined) {
      refuse(conn, hooks, message, WireErrorCode.UNKNOWN_TYPE, `Unknown message type '${type.slice(0, 64)}'`)
      this.telemetry.refused(undefined, WireErrorCode.UNKNOWN_TYPE)
      return
    }
    if (compiled.rateLimit !== undefined) {
      const verdict = conn[kTake](type, compiled.rateLimit)
      if (verdict !== 'taken') {
        refuse(conn, hooks, message, WireErrorCode.RATE_LIMITED, `Too many '${type}' messages`)
        this.telemetry.rateLimited(type)
        this.telemetry.refused(type, WireErrorCode.RATE_LIMITED)
        if (verdict === 'exhausted') conn[kOverLimit]()
        return
      }
    }
    if (compiled.validator !== undefined && !compiled.validator.Check(message.data)) {
      refuse(conn, hooks, message, WireErrorCode.VALIDATION_FAILED, `Invalid data for '${type}'`,
        validationDetails(compiled, message.data))
      this.telemetry.refused(type, WireErrorCode.VALIDATION_FAILED)
      return
    }
    if (hooks.preMessage.length === 0) {
      dispatch(conn, compiled, hooks, message, this.telemetry)
    } else {
      runPreMessage(hooks.preMessage, 0, conn, message, () => { dispatch(conn, compiled, hooks, message, this.telemetry) },
        (err) => {
          fail(conn, hooks, message, err, undefined, false, true)
          this.telemetry.refused(type, err instanceof RealtimeError ? err.code : WireErrorCode.INTERNAL)
        })
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

/**
 * Runs the handler of a message that passed every check and hook, and
 * answers it. `observed` (metrics, tracing) is told once how it ended;
 * `settled` when the handler returned a promise.
 */
function dispatch (conn: AnyConnection, compiled: CompiledMessage, hooks: MessageHooks, message: InboundMessage,
  telemetry: RouteTelemetry): void {
  const observed = telemetry.message(conn, message.type, message.id)
  let result: unknown
  try {
    result = observed === undefined ? compiled.handler(conn, message.data) : observed.run(compiled.handler, conn, message.data)
  } catch (err) {
    fail(conn, hooks, message, err, observed)
    return
  }
  if (result instanceof Promise) {
    result.then((value: unknown) => answer(conn, compiled, hooks, message, value, observed, true),
      (err: unknown) => fail(conn, hooks, message, err, observed, true))
  } else {
    answer(conn, compiled, hooks, message, result, observed)
  }
}

function answer (conn: AnyConnection, compiled: CompiledMessage, hooks: MessageHooks, message: InboundMessage, value: unknown,
  observed?: MessageObservation, settled = false): void {
  const id = message.id
  if (id === undefined || conn.closed) {
    observed?.finish(undefined, settled ? { value, rejected: false } : undefined)
    return
  }
  let frame: string
  try {
    frame = encodeReply(id, value, compiled.stringifyReply)
  } catch (err) {
    fail(conn, hooks, message, err)
    observed?.finish(err instanceof RealtimeError ? err.code : WireErrorCode.INTERNAL, settled ? { value, rejected: false } : undefined)
    return
  }
  conn.send(frame)
  observed?.finish(undefined, settled ? { value, rejected: false } : undefined)
}

/** Answers a message the plugin refuses with a wire error code, and tells the onMessageError hooks. */
function refuse (conn: AnyConnection, hooks: MessageHooks, message: InboundMessage, code: string, text: string,
  details?: WireErrorDetail[]): void {
  conn.send(encodeError(message.id, code, text, details))
  // The error object is built only for hooks that will read it.
  if (hooks.onMessageError.length > 0) notifyMessageError(hooks.onMessageError, conn, message, new RealtimeError(code, text, details))
}

/** Answers a handler's or a preMessage hook's error: a RealtimeError with its code, anything else INTERNAL (logged). */
function fail (conn: AnyConnection, hooks: MessageHooks, message: InboundMessage, err: unknown,
  observed?: MessageObservation, settled = false, hook = false): void {
  if (err instanceof RealtimeError) {
    conn.send(encodeError(message.id, err.code, err.message, err.details))
  } else {
    logHandlerError(conn, message.type, err, hook ? 'realtime preMessage hook failed' : undefined)
    conn.send(encodeError(message.id, WireErrorCode.INTERNAL, 'Internal error'))
  }
  observed?.finish(err instanceof RealtimeError ? err.code : WireErrorCode.INTERNAL, settled ? { value: err, rejected: true } : undefined)
  if (hooks.onMessageError.length > 0) {
    notifyMessageError(hooks.onMessageError, conn, message, err instanceof Error ? err : new Error(String(err)))
  }
}

function logHandlerError (conn: AnyConnection, type: string, err: unknown, what = 'realtime handler failed'): void {
  conn.log.error({ err, namespace: conn.namespace.path, messageType: type, connectionId: conn.id }, what)
}
