import { EnvelopeType } from '../protocol/envelope.js'
import { ClientErrorCode, RealtimeClientError, wireError } from './errors.js'
import { Listeners, type Listener } from './listeners.js'
import { Liveness } from './liveness.js'
import { OfflineQueue } from './offline-queue.js'
import { positive, resolveOptions, type ClientOptions, type ResolvedOptions } from './options.js'
import { encodeData, encodeFrame, type Outgoing } from './outgoing.js'
import { PendingRequests } from './pending-requests.js'
import { backoffDelay } from './reconnect.js'
import { Replay, type Restorer } from './replay.js'
import type {
  AnyRoute, CloseInfo, ConnectionState, EventListener, EventName, MessageName, MessageReply, RequestArgs,
  RequestOptions, RouteShape, SendArgs, SessionInfo, StateInfo, WebSocketLike
} from './types.js'

const OPEN = 1
const CLIENT_CODES = new Set<string>(Object.values(ClientErrorCode))

/**
 * A connection to one fastify-realtime route that keeps itself connected:
 * typed requests and events, reconnect with backoff, replay, offline queue
 * and liveness. Create it with `connect()`.
 */
export class RealtimeClient<R extends RouteShape = AnyRoute> {
  readonly #options: ResolvedOptions<R>
  readonly #listeners = new Listeners()
  readonly #requests = new PendingRequests()
  readonly #queue: OfflineQueue
  readonly #replay: Replay
  #state: ConnectionState = 'connecting'
  #socket: WebSocketLike | undefined
  /** Bumped for every attempt, so events of a socket given up on are ignored. */
  #generation = 0
  #attempt = 0
  #everOpened = false
  #opened = false
  #nextId = 1
  #retryTimer: ReturnType<typeof setTimeout> | undefined
  #connectTimer: ReturnType<typeof setTimeout> | undefined
  #liveness: Liveness | undefined
  /** From the route's `session` frames (route option `recovery`) and the `pos` of its events. */
  #session: { id: string, pos?: string } | undefined
  /** A resumed connection is open and waits for its session frame, which says whether to replay. */
  #resuming = false

  constructor (url: string | URL, options: ClientOptions<R> = {}) {
    this.#options = resolveOptions(url, options)
    this.#queue = new OfflineQueue(this.#options.maxQueued)
    this.#replay = new Replay(this.#options.replay)
    this.#open()
  }

  get state (): ConnectionState {
    return this.#state
  }

  /**
   * On a route with session recovery: the session's id and the position of
   * the last event received, sent back on a reconnect to resume. Undefined
   * before the first `session` frame (and on other routes).
   */
  get session (): SessionInfo | undefined {
    return this.#session && { ...this.#session }
  }

  /** Listens to the client's state. */
  on (event: 'state', listener: (state: ConnectionState, info: StateInfo) => void): () => void
  /** Listens to `error` frames that answer no request (a failed `send()`), and to failures of the client's own hooks. */
  on (event: 'error', listener: (error: RealtimeClientError) => void): () => void
  /**
   * Listens to a server event. When the server asks for an answer
   * (`conn.emitWithAck()`), the first listener's return value is sent back
   * as the answer (a promise is awaited; a throw or rejection answers with
   * an error frame, its `code` or INTERNAL).
   */
  on<K extends EventName<R>> (event: K, listener: EventListener<R, K>): () => void
  on (event: string, listener: Listener): () => void {
    this.#listeners.add(event, listener)
    return () => this.off(event, listener)
  }

  off (event: string, listener: Listener): void {
    this.#listeners.delete(event, listener)
  }

  /**
   * Fire and forget. Returns true if the message was sent or queued, false
   * if it was dropped (the queue is full, or the client is closed). Throws a
   * TypeError, sending nothing, for a type of the protocol's own or data
   * JSON cannot carry.
   */
  send<K extends MessageName<R>> (type: K, ...args: SendArgs<R, K>): boolean {
    return this.#send({ type, json: encodeData(type, args[0]), id: undefined }, false)
  }

  /**
   * Sends a request; resolves with the reply's `data`, rejects with a
   * RealtimeClientError. Throws a TypeError, sending nothing, for a bad
   * `timeout`, a type of the protocol's own or data JSON cannot carry.
   */
  request<K extends MessageName<R>> (type: K, ...args: RequestArgs<R, K>): Promise<MessageReply<R, K>> {
    return this.#request(type, encodeData(type, args[0]), this.#timeout(args[1]), false)
  }

  /** Closes for good: no reconnect; queued and in-flight requests reject with CLOSED. */
  close (code = 1000, reason = ''): void {
    if (this.#state === 'closed') return
    const socket = this.#socket
    this.#detach(ClientErrorCode.CLOSED)
    clearTimeout(this.#retryTimer)
    if (socket !== undefined) {
      try { socket.close(code, reason) } catch { socket.close() }
    }
    this.#final({ code, reason, attempt: this.#attempt })
  }

  #timeout (options: RequestOptions | undefined): number {
    const timeout = options?.timeout ?? this.#options.requestTimeout
    positive('timeout', timeout)
    return timeout
  }

  /** `direct`: at once even while restoring (not yet `open`), never queued. */
  #send (outgoing: Outgoing, direct: boolean): boolean {
    if (this.#state === 'closed') return false
    if (direct || this.#state === 'open') return this.#write(outgoing)
    return this.#queue.add(outgoing)
  }

  #request (type: string, json: string | undefined, timeout: number, direct: boolean): Promise<any> {
    if (this.#state === 'closed') return Promise.reject(this.#error(ClientErrorCode.CLOSED, 'The client is closed', type))
    const id = this.#nextId++
    const outgoing: Outgoing = { type, json, id }
    const now = direct || this.#state === 'open'
    if (!now && !this.#queue.add(outgoing)) {
      return Promise.reject(this.#error(ClientErrorCode.QUEUE_FULL, 'The offline queue is full', type))
    }
    const answer = this.#requests.wait(id, outgoing, timeout, () => this.#queue.remove(outgoing))
    if (now) this.#write(outgoing)
    return answer
  }

  /** Puts one message on the socket; the replay learns what was sent. */
  #write (outgoing: Outgoing): boolean {
    const socket = this.#socket
    if (socket === undefined || socket.readyState !== OPEN) return false
    socket.send(encodeFrame(outgoing))
    this.#replay.written(outgoing.type, outgoing.json, outgoing.id !== undefined)
    return true
  }

  #open (): void {
    const generation = ++this.#generation
    const token = this.#options.token
    if (typeof token !== 'function') {
      this.#dial(generation, token)
      return
    }
    let value
    try {
      value = token()
    } catch (err) {
      this.#tokenFailed(generation, err)
      return
    }
    Promise.resolve(value).then((resolved) => {
      if (generation === this.#generation && this.#state !== 'closed') this.#dial(generation, resolved)
    }, (err: unknown) => this.#tokenFailed(generation, err))
  }

  #tokenFailed (generation: number, err: unknown): void {
    if (generation !== this.#generation || this.#state === 'closed') return
    this.#listeners.emit('error', this.#error(ClientErrorCode.HOOK_FAILED, `token() failed: ${messageOf(err)}`))
    this.#lost({ code: 1006, reason: 'token() failed', opened: false })
  }

  #dial (generation: number, token: string | undefined | null): void {
    let url = this.#options.url
    if (this.#session !== undefined) url = resumeUrl(url, this.#session.id, this.#session.pos)
    if (token != null) {
      url += `${url.includes('?') ? '&' : '?'}${encodeURIComponent(this.#options.tokenParam)}=${encodeURIComponent(token)}`
    }
    this.#opened = false
    let socket: WebSocketLike
    try {
      socket = new this.#options.WebSocket(url, this.#options.protocols)
    } catch (err) {
      this.#lost({ code: 1006, reason: messageOf(err), opened: false })
      return
    }
    this.#socket = socket
    this.#connectTimer = setTimeout(() => this.#giveUp(socket, 'connect timeout'), this.#options.connectTimeout)
    socket.onopen = () => {
      if (generation === this.#generation) this.#ready()
    }
    socket.onmessage = (event: { data: unknown }) => {
      if (generation === this.#generation) this.#receive(event.data)
    }
    socket.onerror = (event: { message?: unknown } | undefined) => {
      // An error before open is a failed attempt (a refused upgrade, a network error). Browsers and `ws` go on
      // to close; undici (Node's global WebSocket) never does and would sit in `connecting` until the timeout.
      if (generation !== this.#generation || this.#opened) return
      this.#detach()
      try { socket.close() } catch {}
      const close: CloseInfo = { code: 1006, reason: 'connect failed', opened: false }
      const status = upgradeStatus(event)
      if (status !== undefined) close.status = status
      this.#lost(close)
    }
    socket.onclose = (event: { code?: number, reason?: string }) => {
      if (generation !== this.#generation) return
      this.#detach()
      this.#lost({ code: event.code ?? 1006, reason: event.reason ?? '', opened: this.#opened })
    }
  }

  #ready (): void {
    this.#opened = true
    const ping = this.#options.ping
    const sendPing = (): boolean => this.#write({ type: EnvelopeType.PING, json: undefined, id: undefined })
    if (ping !== false) {
      const socket = this.#socket!
      this.#liveness = new Liveness(ping, sendPing, () => this.#giveUp(socket, 'ping timeout'))
      this.#liveness.start()
    }
    if (this.#session === undefined) {
      void this.#restore(this.#generation, undefined)
      return
    }
    // A resume: opening ends with the session frame (the connect timeout still runs). The server answers
    // frames only after it, so a pong first means the route has stopped speaking sessions.
    this.#resuming = true
    sendPing()
  }

  /** After a reconnect, restores the server-side state unless the session was `recovered`; then sends the queue. */
  async #restore (generation: number, recovered: boolean | undefined): Promise<void> {
    clearTimeout(this.#connectTimer)
    this.#resuming = false
    if (this.#everOpened) {
      // Restore the server-side state first: the replay, then the app's hook; the queue goes after both.
      for (const { type, json } of recovered === true ? [] : this.#replay.owed()) {
        this.#request(type, json, this.#options.requestTimeout, true).catch((err: RealtimeClientError) => {
          // Only the server's refusal (e.g. FORBIDDEN now) ends a replay; a lost answer is retried next time.
          if (CLIENT_CODES.has(err.code)) return
          this.#replay.refused(type, json)
          this.#listeners.emit('error', err)
        })
      }
      const hook = this.#options.onReconnect
      if (hook !== undefined) {
        const restorer: Restorer<R> = {
          recovered: recovered === true,
          send: (type, ...args) => this.#send({ type, json: encodeData(type, args[0]), id: undefined }, true),
          request: (type, ...args) => this.#request(type, encodeData(type, args[0]), this.#timeout(args[1]), true)
        }
        try {
          await hook(restorer)
        } catch (err) {
          this.#listeners.emit('error', this.#error(ClientErrorCode.HOOK_FAILED, `onReconnect failed: ${messageOf(err)}`))
        }
        if (generation !== this.#generation || this.#state === 'closed') return
      }
    }
    this.#everOpened = true
    this.#attempt = 0
    for (const outgoing of this.#queue.drain()) this.#write(outgoing)
    this.#setState('open', recovered === undefined ? { attempt: 0 } : { attempt: 0, recovered })
  }

  #receive (raw: unknown): void {
    this.#liveness?.seen()
    if (typeof raw !== 'string') return
    let message
    try {
      message = JSON.parse(raw)
    } catch {
      return
    }
    if (message === null || typeof message !== 'object' || typeof message.type !== 'string') return
    const { type, id } = message
    if (type === EnvelopeType.REPLY || type === EnvelopeType.ERROR) {
      const pending = this.#requests.take(id)
      if (pending === undefined) {
        // An answer to a send (no id), or to a request that already timed out.
        if (type === EnvelopeType.ERROR) this.#listeners.emit('error', wireError(message.error, undefined))
        return
      }
      const { type: requested, json } = pending.outgoing
      if (type === EnvelopeType.REPLY) {
        this.#replay.answered(requested, json)
        pending.resolve(message.data)
      } else {
        pending.reject(wireError(message.error, requested))
      }
      return
    }
    const session = this.#session
    if (type === 'session') {
      const { id, recovered } = message.data ?? {}
      if (typeof id !== 'string') return
      // A fresh session starts with no position: it resumes from its own start.
      this.#session = { id, pos: recovered === true ? session?.pos : undefined }
      if (this.#resuming) void this.#restore(this.#generation, recovered === true)
    } else if (type === EnvelopeType.PONG) {
      if (this.#resuming) {
        this.#session = undefined
        void this.#restore(this.#generation, false)
      }
    } else {
      const pos = message.pos
      if (session !== undefined && typeof pos === 'string') {
        // Positions only grow: one already seen is a duplicate (a live copy of an event the resume sent).
        if (!isAfter(pos, session.pos)) return
        session.pos = pos
      }
      // An `id` asks for an answer (conn.emitWithAck()): the first listener gives it, on the socket that asked.
      const socket = this.#socket
      const answer = (frame: object): void => {
        if (socket?.readyState === OPEN) socket.send(JSON.stringify({ ...frame, id }))
      }
      this.#listeners.answer(type, [message.data], id == null
        ? undefined
        : (first) => {
            // Without a listener, first() throws: UNKNOWN_TYPE at once, rather than the server's timeout.
            (async () => first!(message.data))()
              .then((data) => answer({ type: EnvelopeType.REPLY, data }))
              .catch((err) => answer({
                type: EnvelopeType.ERROR,
                error: first ? { code: err?.code ?? 'INTERNAL', message: err?.message } : { code: 'UNKNOWN_TYPE' }
              }))
          })
    }
  }

  /** Drops a socket that will not tell us it is dead (no open in time, no pong). */
  #giveUp (socket: WebSocketLike, reason: string): void {
    if (socket !== this.#socket) return
    this.#detach()
    try { socket.close(4000, reason) } catch {}
    this.#lost({ code: 1006, reason, opened: this.#opened })
  }

  /** Forgets the current socket: its events are ignored from now on, its requests in flight fail with `code`. */
  #detach (code: ClientErrorCode = ClientErrorCode.CONNECTION_LOST): void {
    this.#generation++
    clearTimeout(this.#connectTimer)
    this.#liveness?.stop()
    this.#liveness = undefined
    const socket = this.#socket
    this.#socket = undefined
    if (socket !== undefined) {
      socket.onopen = socket.onmessage = socket.onclose = null
      // Closing a socket still connecting makes `ws` emit an error later; unheard, it would be thrown.
      socket.onerror = ignore
    }
    // Queued requests have not left: they wait for the next connection.
    this.#requests.fail(code, this.#queue.requestIds())
  }

  /** The connection is gone: retry with backoff, or close for good. */
  #lost (close: CloseInfo): void {
    if (this.#state === 'closed') return
    const info: StateInfo = { code: close.code, reason: close.reason, attempt: this.#attempt }
    if (close.status !== undefined) info.status = close.status
    const policy = this.#options.reconnect
    if (policy === false || this.#attempt >= policy.maxAttempts || !policy.shouldReconnect(close)) {
      this.#final(info)
      return
    }
    const delay = backoffDelay(policy, this.#attempt)
    this.#attempt++
    this.#retryTimer = setTimeout(() => this.#open(), delay)
    this.#setState(this.#everOpened ? 'reconnecting' : 'connecting', { ...info, attempt: this.#attempt, delay })
  }

  #final (info: StateInfo): void {
    this.#requests.fail(ClientErrorCode.CLOSED)
    this.#queue.drain()
    this.#setState('closed', info)
  }

  #setState (state: ConnectionState, info: StateInfo): void {
    this.#state = state
    this.#listeners.emit('state', state, info)
  }

  #error (code: string, message: string, type?: string): RealtimeClientError {
    return new RealtimeClientError(code, message, undefined, type)
  }
}

function ignore (): void {}

/** Whether position `pos` (`<epoch>-<seq>`) comes after `last`; another epoch is another history: after. */
function isAfter (pos: string, last: string | undefined): boolean {
  const [epoch, seq] = pos.split('-')
  const [lastEpoch, lastSeq] = last?.split('-') ?? []
  return epoch !== lastEpoch || Number(seq) > Number(lastSeq)
}

/** The URL with `resume` and `pos` (route option `recovery`) in place of any it had. */
function resumeUrl (url: string, id: string, pos: string | undefined): string {
  const [path, query] = url.split(/\?(.*)/)
  const params = (query ?? '').split('&').filter((param) => param !== '' && !/^(resume|pos)(=|$)/.test(param))
  params.push('resume=' + encodeURIComponent(id))
  if (pos !== undefined) params.push('pos=' + encodeURIComponent(pos))
  return `${path!}?${params.join('&')}`
}

/**
 * The HTTP status of a refused upgrade, where the WebSocket implementation
 * tells it: `ws` does in its error's message ("Unexpected server response:
 * 401"); browsers and undici do not.
 */
function upgradeStatus (event: { message?: unknown } | undefined): number | undefined {
  const status = /Unexpected server response: (\d{3})/.exec(String(event?.message))?.[1]
  return status === undefined ? undefined : Number(status)
}

function messageOf (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
