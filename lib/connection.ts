import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { WebSocket } from 'ws'
import { isAnswerFrame, PendingAcks, withAckId, type AckOptions } from './acks.js'
import { BroadcastOperator } from './broadcast.js'
import { payloadOf, writeFrame, writeText } from './broadcast-frame.js'
import { CloseCode } from './protocol/close-codes.js'
import type { Namespace } from './namespace.js'
import { TokenBucket, type RateVerdict, type ResolvedRateLimit } from './rate-limit.js'
import { RealtimeError, WireErrorCode } from './protocol/wire-errors.js'
import { FST_RT_ACK_CLOSED, FST_RT_ACK_UNSUPPORTED } from './errors.js'
import type { InboundMessage } from './parse-envelope.js'
import type { AckAnswer, EventMap, EventName, EventPayload, RequestUser } from './route.js'
import type { RouteRuntime } from './route-runtime.js'
import { ackTimeout } from './validate-options.js'
import {
  kAlive, kAnswer, kCleanup, kEncode, kJoin, kLeave, kOpen, kReceive, kRemove, kReplayedTo, kRoomsOf, kOverLimit, kSendFrame, kTake
} from './symbols.js'

/**
 * One client on one WebSocket route. Created after the upgrade, once the
 * route's hooks have accepted the request; gone after `onClose`. `E` is the
 * route's event map, `U` the type of `request.user`, `Q` and `P` those of
 * the upgrade request's query string and route parameters, `A` the
 * schemas of the answers to `emitWithAck()` (the route's `acks`).
 */
export class Connection<E extends EventMap = EventMap, U = RequestUser, Q = Record<string, unknown>, P = Record<string, unknown>,
  A extends EventMap = EventMap> {
  /** Unique across instances: the instance id, a dot, a counter. */
  readonly id: string
  /** The namespace (route path) this connection belongs to. */
  readonly namespace: Namespace<E>
  /** The upgrade request's query string, as parsed (and validated) by Fastify. */
  readonly query: Readonly<Q>
  /** The upgrade request's route parameters. */
  readonly params: Readonly<P>
  /** The client's IP address, as Fastify sees it (`trustProxy` applies). */
  readonly ip: string
  /** What the route's hooks put on `request.user`. */
  readonly user: U
  /** The user's id (`userId` option), when the user has one. */
  readonly userId: string | undefined
  /** The underlying `ws` socket, for what this class does not cover. */
  readonly socket: WebSocket

  /** @internal set false by each heartbeat ping, true by any inbound frame or pong */
  [kAlive] = true
  /** The session id sent in the `session` frame (route option `recovery`); undefined on other routes. */
  readonly sessionId: string | undefined = undefined
  /** Whether this connection resumed a lost session: its rooms and missed events came back (route option `recovery`). */
  readonly recovered: boolean = false
  readonly #route: RouteRuntime
  // The rooms it was in, kept for onClose once the namespace has let it go.
  #roomsAtClose: ReadonlySet<string> | undefined
  #queue: Array<Buffer | boolean> | undefined
  #closed = false
  #openRan = false
  #state: Record<string, unknown> | undefined
  #request: FastifyRequest | undefined
  #bucket: TokenBucket | undefined
  #typeBuckets: Map<string, TokenBucket> | undefined
  #dropped = 0
  #slowClosed = false
  #expiry: NodeJS.Timeout | undefined
  readonly #routeLog: FastifyBaseLogger
  readonly #reqId: string
  #log: FastifyBaseLogger | undefined
  /**
   * @internal the history position up to which this connection has its
   * events: Infinity while its claimed session is resumed (broadcasts wait,
   * then come from the history), then the last one replayed, so that a live
   * copy of a replayed event that arrives late is not sent twice
   */
  [kReplayedTo] = 0
  #acks: PendingAcks | undefined

  /** @internal */
  constructor (id: string, namespace: Namespace<E>, route: RouteRuntime, socket: WebSocket,
    request: FastifyRequest, userId: string | undefined, log: FastifyBaseLogger) {
    this.id = id
    this.namespace = namespace
    this.#route = route
    this.socket = socket
    this.#request = request
    this.query = (request.query ?? {}) as Q
    this.params = (request.params ?? {}) as P
    // An injected upgrade (app.injectWS) has no peer; Fastify's inject() reports 127.0.0.1 alike.
    this.ip = request.ip ?? '127.0.0.1'
    this.user = (request as { user?: unknown }).user as U
    this.userId = userId
    this.#routeLog = log
    this.#reqId = request.id
  }

  /**
   * A child of the route's logger bound to `reqId` (the upgrade's),
   * `connectionId`, `namespace` and `userId`. Made at first use: most
   * connections never log, and a child logger costs every accept.
   */
  get log (): FastifyBaseLogger {
    this.#log ??= this.#routeLog.child({ reqId: this.#reqId, connectionId: this.id, namespace: this.namespace.path, userId: this.userId })
    return this.#log
  }

  /**
   * The upgrade request, as the route's hooks left it: there during `onOpen`,
   * then released (about 1.6 KB per connection) unless the route sets
   * `keepRequest: true`. Copy what a connection needs later into `state`.
   */
  get request (): FastifyRequest | undefined {
    return this.#request
  }

  /** Rooms this connection is in, on its namespace (in `onClose`: the rooms it was in). */
  get rooms (): ReadonlySet<string> {
    return this.#roomsAtClose ?? this.namespace[kRoomsOf](this)
  }

  /** Whether the connection has closed (its `onClose` has run or is running). */
  get closed (): boolean {
    return this.#closed
  }

  /** Bytes queued for this client and not yet handed to the kernel. */
  get bufferedAmount (): number {
    return this.socket.bufferedAmount
  }

  /** Messages dropped for this client while it read too slowly (`slowConsumer: 'drop'`). */
  get droppedMessages (): number {
    return this.#dropped
  }

  /** A free-form object for per-connection application state. */
  get state (): Record<string, unknown> {
    this.#state ??= {}
    return this.#state
  }

  /**
   * Joins one or more rooms. Local membership is immediate (after `canJoin`);
   * the promise resolves once the broker delivers the rooms' traffic from
   * every instance (at once without Redis). It rejects with a RealtimeError
   * (ROOM_LIMIT, FORBIDDEN) when a room is refused, which a handler that
   * returns or awaits it turns into the client's error answer; a rejection
   * nobody awaits is logged at debug level, never unhandled.
   */
  join (room: string | readonly string[]): Promise<void> {
    if (this.#closed) return Promise.resolve()
    const rooms = typeof room === 'string' ? [room] : room
    const limits = this.#route.limits
    const current = this.rooms
    let adding = 0
    for (const name of rooms) {
      if (typeof name !== 'string' || name.length === 0 || name.length > limits.maxRoomNameLength) {
        return this.#refuseJoin(new RealtimeError(WireErrorCode.ROOM_LIMIT, `A room name has 1 to ${limits.maxRoomNameLength} characters`))
      }
      if (!current.has(name)) adding++
    }
    if (current.size + adding > limits.maxRoomsPerConnection) {
      return this.#refuseJoin(new RealtimeError(WireErrorCode.ROOM_LIMIT, `A connection is in at most ${limits.maxRoomsPerConnection} rooms`))
    }
    const canJoin = limits.canJoin
    if (canJoin === undefined) return this.#joinNow(rooms)
    const decided = Promise.all(rooms.map((name) => canJoin(this as Connection<any, any>, name))).then((answers) => {
      const refused = rooms.find((_name, i) => answers[i] !== true)
      if (refused !== undefined) throw new RealtimeError(WireErrorCode.FORBIDDEN, `Not allowed to join '${refused.slice(0, 64)}'`)
      return this.#joinNow(rooms)
    })
    decided.catch((err: unknown) => this.log.debug({ err, connectionId: this.id }, 'realtime join refused'))
    return decided
  }

  #joinNow (rooms: readonly string[]): Promise<void> {
    if (this.#closed) return Promise.resolve()
    if (rooms.length === 1) return this.namespace[kJoin](this, rooms[0]!)
    return Promise.all(rooms.map((name) => this.namespace[kJoin](this, name))).then(noop)
  }

  #refuseJoin (err: RealtimeError): Promise<void> {
    const refused = Promise.reject(err)
    refused.catch(() => this.log.debug({ err, connectionId: this.id }, 'realtime join refused'))
    return refused
  }

  /** Leaves one or more rooms; leaving a room it is not in does nothing. */
  leave (room: string | readonly string[]): void {
    for (const name of typeof room === 'string' ? [room] : room) this.namespace[kLeave](this, name)
  }

  /** Sends event `type` to this connection only. */
  emit<K extends EventName<E>> (type: K, data: EventPayload<E, K>): void {
    this.#route.telemetry.emitted()
    this.send(this.namespace[kEncode](type, data))
  }

  /**
   * Sends event `type` to this connection only, asking for an answer: the
   * frame carries an `id` the client echoes in a `reply` (the promise
   * resolves with its `data`, checked against the route's `acks` schema
   * for the event) or an `error` frame (rejects with a RealtimeError of the
   * client's code). Rejects with FST_RT_ACK_TIMEOUT, FST_RT_ACK_CLOSED,
   * FST_RT_ACK_LIMIT or FST_RT_ACK_INVALID; a rejection nobody awaits is
   * logged at debug level, never unhandled.
   */
  emitWithAck<K extends EventName<E>> (type: K, data: EventPayload<E, K>, options?: AckOptions): Promise<AckAnswer<A, K>> {
    const route = this.#route
    const timeout = options?.timeout === undefined ? route.limits.ackTimeout : ackTimeout('timeout', options.timeout)
    let answer: Promise<unknown>
    if (route.acks === undefined) {
      answer = Promise.reject(new FST_RT_ACK_UNSUPPORTED(this.namespace.path))
    } else if (this.#closed || this.socket.readyState !== WebSocket.OPEN) {
      answer = Promise.reject(new FST_RT_ACK_CLOSED(type))
    } else {
      // Encoded first: data the event cannot carry throws here, as emit() does, before anything is awaited.
      const frame = this.namespace[kEncode](type, data)
      const ack = (this.#acks ??= new PendingAcks(route.limits.maxPendingAcks)).add(type, timeout)
      answer = ack.answer
      if (ack.id !== undefined) {
        route.telemetry.emitted()
        this.send(withAckId(frame, ack.id))
      }
    }
    answer.catch((err: unknown) => this.log.debug({ err, connectionId: this.id }, 'realtime emitWithAck failed'))
    return answer as Promise<AckAnswer<A, K>>
  }

  /** @internal a `reply` or `error` frame: a client's answer to emitWithAck() */
  [kAnswer] (message: InboundMessage): void {
    const refusal = this.#acks?.answer(message, this.#route.acks)
    if (refusal !== undefined) this.send(refusal)
  }

  /**
   * Sends a frame as is: a string as a text frame, a Buffer as a binary
   * frame. Dropped once closed, and subject to the slow-consumer policy.
   */
  send (data: string | Buffer): void {
    if (!this.#writable()) return
    if (typeof data !== 'string' || !writeText(this.socket, data)) this.socket.send(data)
  }

  /** Whether a frame may go out now; applies the slow-consumer policy when the client is behind. */
  #writable (): boolean {
    const socket = this.socket
    if (socket.readyState !== WebSocket.OPEN) return false
    const limits = this.#route.limits
    if (socket.bufferedAmount <= limits.maxBufferedBytes) return true
    if (limits.slowConsumer === 'drop') {
      this.#dropped++
      limits.counters.droppedMessages++
      this.#route.telemetry.slowConsumerDropped()
    } else if (!this.#slowClosed) {
      this.#slowClosed = true
      limits.counters.slowConsumersClosed++
      this.#route.telemetry.slowConsumerClosed()
      this.log.info({ connectionId: this.id, bufferedAmount: socket.bufferedAmount }, 'realtime closing a slow consumer')
      // The close frame waits behind what is buffered; ws drops the socket if it is never read.
      socket.close(CloseCode.SLOW_CONSUMER, 'slow consumer')
    }
    return false
  }

  /** Broadcast to the members of `room` (or rooms) on every instance, this connection excepted. */
  to (room: string | readonly string[]): BroadcastOperator<E> {
    return new BroadcastOperator(this.namespace, typeof room === 'string' ? [room] : room, [this.id])
  }

  /** Broadcast to the whole namespace on every instance, this connection excepted. */
  get broadcast (): BroadcastOperator<E> {
    return new BroadcastOperator(this.namespace, [], [this.id])
  }

  /** Closes the connection with a close frame; `onClose` follows once the peer is gone. */
  close (code: number = CloseCode.NORMAL, reason = ''): void {
    if (this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING) {
      this.socket.close(code, reason)
    }
  }

  /**
   * Closes the connection with 4401 (session expired) at `at` (epoch ms),
   * e.g. the `exp` of the token it authenticated with. A later call moves
   * the deadline; `undefined` clears it.
   */
  expireAt (at: number | Date | undefined): void {
    clearTimeout(this.#expiry)
    this.#expiry = undefined
    if (at === undefined || this.#closed) return
    const delay = Math.max(0, +at - Date.now())
    // setTimeout cannot wait longer than 2^31-1 ms (24.8 days); a later deadline is checked again then.
    this.#expiry = setTimeout(() => {
      if (Date.now() >= +at) this.close(CloseCode.SESSION_EXPIRED, 'session expired')
      else this.expireAt(at)
    }, Math.min(delay, 2 ** 31 - 1))
    this.#expiry.unref()
  }

  /** Drops the TCP connection without a close handshake (the peer sees 1006). */
  terminate (): void {
    this.socket.terminate()
  }

  /** @internal a message encoded and framed once for many recipients (see broadcast-frame.ts) */
  [kSendFrame] (framed: Buffer): void {
    if (!this.#writable()) return
    if (!writeFrame(this.socket, framed)) this.socket.send(payloadOf(framed), { binary: false })
  }

  /**
   * @internal
   * Takes one message from the connection's budget (`type` undefined) or a
   * message type's: 'taken', 'refused', or 'exhausted' when this refusal
   * makes that budget's run reach `maxViolations` (the caller answers the
   * message, then calls [kOverLimit]).
   */
  [kTake] (type: string | undefined, limit: ResolvedRateLimit): RateVerdict {
    const now = Date.now()
    let bucket: TokenBucket | undefined
    if (type === undefined) {
      bucket = this.#bucket ??= new TokenBucket(limit, now)
    } else {
      this.#typeBuckets ??= new Map()
      bucket = this.#typeBuckets.get(type)
      if (bucket === undefined) this.#typeBuckets.set(type, bucket = new TokenBucket(limit, now))
    }
    if (bucket.take(now)) return 'taken'
    return bucket.exhausted ? 'exhausted' : 'refused'
  }

  /** @internal a budget's run of refusals reached maxViolations: close with 1008 */
  [kOverLimit] (): void {
    this.log.info({ connectionId: this.id }, 'realtime closing a client over its rate limit')
    this.close(CloseCode.POLICY_VIOLATION, 'rate limit exceeded')
  }

  /**
   * @internal
   * Runs the open sequence. Frames that arrive before it finishes wait in a
   * bounded queue and are handled afterwards, in arrival order.
   */
  [kOpen] (ready: Promise<void> | undefined): void {
    this.#route.heartbeat?.add(this)
    const onOpen = this.#route.onOpen
    let pending: unknown = ready
    if (onOpen !== undefined) {
      if (ready === undefined) {
        this.#openRan = true
        try {
          pending = onOpen(this, this.#request!)
        } catch (err) {
          this.#failOpen(err)
          return
        }
      } else {
        pending = ready.then(() => {
          if (this.#closed) return undefined
          this.#openRan = true
          return onOpen(this, this.#request!)
        })
      }
    }
    if (!(pending instanceof Promise)) {
      this.#releaseRequest()
      return
    }
    this.#queue = []
    pending.then(() => this.#drain(), (err: unknown) => this.#failOpen(err))
  }

  #releaseRequest (): void {
    if (!this.#route.keepRequest) this.#request = undefined
  }

  #failOpen (err: unknown): void {
    this.#releaseRequest()
    this.#queue = undefined
    this.log.error({ err, namespace: this.namespace.path, connectionId: this.id }, 'realtime onOpen failed')
    this.close(CloseCode.INTERNAL_ERROR, 'internal error')
  }

  #drain (): void {
    this.#releaseRequest()
    const queue = this.#queue
    this.#queue = undefined
    if (queue === undefined) return
    for (let i = 0; i < queue.length && !this.#closed; i += 2) {
      this.#route.handleFrame(this as Connection<any, any>, queue[i] as Buffer, queue[i + 1] as boolean)
    }
  }

  /** @internal an inbound frame from the socket */
  [kReceive] (data: Buffer, isBinary: boolean): void {
    this[kAlive] = true
    if (this.#closed) return
    const limit = this.#route.limits.rateLimit
    const verdict = limit === undefined ? 'taken' : this[kTake](undefined, limit)
    if (verdict !== 'taken') {
      this.#route.telemetry.rateLimited(undefined)
      if (this.socket.readyState === WebSocket.OPEN) {
        this.#route.refuseFrame(this as Connection<any, any>, data, isBinary, WireErrorCode.RATE_LIMITED, 'Too many messages')
      }
      if (verdict === 'exhausted') this[kOverLimit]()
      return
    }
    // An answer to an emitWithAck() of onOpen does not wait for onOpen behind the queue.
    if (this.#queue === undefined || (this.#acks !== undefined && this.#acks.size > 0 && isAnswerFrame(data, isBinary))) {
      this.#route.handleFrame(this as Connection<any, any>, data, isBinary)
    } else if (this.#queue.length < this.#route.maxQueuedMessages * 2) {
      this.#queue.push(data, isBinary)
    } else {
      this.#queue.length = 0
      this.close(CloseCode.POLICY_VIOLATION, 'too many messages before open')
    }
  }

  /** @internal runs once, when the socket has closed */
  [kCleanup] (code: number, reason: string): void {
    if (this.#closed) return
    this.#closed = true
    this.#queue = undefined
    clearTimeout(this.#expiry)
    this.#acks?.close()
    this.#route.heartbeat?.delete(this)
    // Rooms stay readable in onClose; the room index no longer lists this connection.
    this.#roomsAtClose = this.namespace[kRemove](this)
    this.#route.telemetry.closed(this as Connection<any, any>, code, reason)
    const onClose = this.#route.onClose
    // onClose answers onOpen: a connection lost before its onOpen ran (while it waited for its rooms'
    // traffic or its session's resume) never had one, so it gets no onClose either.
    if (onClose === undefined || (this.#route.onOpen !== undefined && !this.#openRan)) return
    try {
      const result = onClose(this as Connection<any, any>, code, reason)
      if (result instanceof Promise) result.catch((err: unknown) => this.#logCloseError(err))
    } catch (err) {
      this.#logCloseError(err)
    }
  }

  #logCloseError (err: unknown): void {
    this.log.error({ err, namespace: this.namespace.path, connectionId: this.id }, 'realtime onClose failed')
  }
}

function noop (): void {}
