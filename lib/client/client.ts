import { ClientErrorCode, RealtimeClientError, type ErrorDetail } from './errors.js'
import { Liveness, type PingOptions } from './liveness.js'
import { backoffDelay, positive, resolveReconnect, type ReconnectOptions, type ResolvedReconnect } from './reconnect.js'
import type {
  AnyRoute, CloseInfo, ConnectionState, EventData, EventName, MessageName, MessageReply, RequestArgs,
  RequestOptions, RouteShape, SendArgs, StateInfo, WebSocketConstructor, WebSocketLike
} from './types.js'

/** Sends that go out at once, for `onReconnect`: they run before the offline queue is sent. */
export interface Restorer<R extends RouteShape = AnyRoute> {
  send: <K extends MessageName<R>>(type: K, ...args: SendArgs<R, K>) => boolean
  request: <K extends MessageName<R>>(type: K, ...args: RequestArgs<R, K>) => Promise<MessageReply<R, K>>
}

export interface ClientOptions<R extends RouteShape = AnyRoute> {
  /** The WebSocket class: the global `WebSocket` by default (browsers, Node 22+); pass `ws`'s on Node 20. */
  WebSocket?: WebSocketConstructor
  /** Subprotocols for the WebSocket constructor. */
  protocols?: string | string[]
  /**
   * Added to the URL as `?token=` (see `tokenParam`). A function is called
   * for every attempt, so a reconnect carries a fresh token; if it throws,
   * the attempt fails (reported on `error` as HOOK_FAILED) and is retried.
   */
  token?: string | (() => string | undefined | null | Promise<string | undefined | null>)
  /** @default 'token' */
  tokenParam?: string
  /** Milliseconds a request waits for its answer (queued time included). @default 10000 */
  requestTimeout?: number
  /** Milliseconds an attempt may take to open before it is dropped and retried. @default 10000 */
  connectTimeout?: number
  /** @default { initialDelay: 500, maxDelay: 30000, maxAttempts: Infinity } */
  reconnect?: ReconnectOptions | false
  /** @default { interval: 25000, timeout: 10000 } */
  ping?: PingOptions | false
  /**
   * Sends and requests kept while not open, sent in order once open. When
   * full, `send()` returns false and `request()` rejects with QUEUE_FULL.
   * @default 1000
   */
  maxQueued?: number
  /**
   * Message types whose sends are replayed after a reconnect, each mapped to
   * the type that undoes it: a `join` that was sent (or, as a request,
   * answered) is sent again on every reconnect until a `leave` with the same
   * `data` goes out. `false`: replay nothing.
   * @default { join: 'leave' }
   */
  replay?: Partial<Record<MessageName<R>, MessageName<R> | null>> | false
  /** Runs after every reconnect, after the replay and before the offline queue is sent. */
  onReconnect?: (restorer: Restorer<R>) => void | Promise<void>
}

interface Pending {
  readonly type: string
  readonly data: unknown
  readonly resolve: (value: any) => void
  readonly reject: (error: RealtimeClientError) => void
  timer: ReturnType<typeof setTimeout> | undefined
}

interface Outgoing {
  readonly type: string
  readonly data: unknown
  /** A request's id; none for a send. */
  readonly id: number | undefined
}

type Listener = (...args: any[]) => void

const OPEN = 1
const CLIENT_CODES = new Set<string>(Object.values(ClientErrorCode))

/**
 * A connection to one fastify-realtime route that keeps itself connected:
 * typed requests and events, reconnect with backoff, replay, offline queue
 * and liveness. Create it with `connect()`.
 */
export class RealtimeClient<R extends RouteShape = AnyRoute> {
  readonly #url: string
  readonly #WebSocket: WebSocketConstructor
  readonly #options: ClientOptions<R>
  readonly #requestTimeout: number
  readonly #connectTimeout: number
  readonly #maxQueued: number
  readonly #reconnect: ResolvedReconnect | false
  readonly #ping: Required<PingOptions> | false
  readonly #replayTypes: Map<string, string | null>
  /** Undo type -> the type it undoes. */
  readonly #undoTypes = new Map<string, string>()
  readonly #listeners = new Map<string, Set<Listener>>()
  readonly #pending = new Map<number, Pending>()
  readonly #queue: Outgoing[] = []
  /** What to send again after a reconnect, keyed by type and data. */
  readonly #replay = new Map<string, { type: string, data: unknown }>()
  #state: ConnectionState = 'connecting'
  #socket: WebSocketLike | undefined
  /** Bumped for every attempt, so events of a socket given up on are ignored. */
  #generation = 0
  #attempt = 0
  #everOpened = false
  #opened = false
  #status: number | undefined
  #nextId = 1
  #retryTimer: ReturnType<typeof setTimeout> | undefined
  #connectTimer: ReturnType<typeof setTimeout> | undefined
  #liveness: Liveness | undefined

  constructor (url: string | URL, options: ClientOptions<R> = {}) {
    this.#url = webSocketUrl(url)
    const WebSocketClass = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
    if (typeof WebSocketClass !== 'function') {
      throw new TypeError('No WebSocket class: pass options.WebSocket (e.g. the ws package\'s) on Node 20')
    }
    this.#WebSocket = WebSocketClass
    this.#options = options
    this.#requestTimeout = options.requestTimeout ?? 10_000
    this.#connectTimeout = options.connectTimeout ?? 10_000
    this.#maxQueued = options.maxQueued ?? 1000
    positive('requestTimeout', this.#requestTimeout)
    positive('connectTimeout', this.#connectTimeout)
    positive('maxQueued', this.#maxQueued, true)
    this.#reconnect = resolveReconnect(options.reconnect)
    this.#ping = options.ping === false
      ? false
      : { interval: options.ping?.interval ?? 25_000, timeout: options.ping?.timeout ?? 10_000 }
    if (this.#ping !== false) {
      positive('ping.interval', this.#ping.interval)
      positive('ping.timeout', this.#ping.timeout)
    }
    const replay = options.replay === false ? {} : (options.replay ?? { join: 'leave' })
    this.#replayTypes = new Map(Object.entries(replay as Record<string, string | null>))
    for (const [type, undo] of this.#replayTypes) if (undo != null) this.#undoTypes.set(undo, type)
    this.#open()
  }

  get state (): ConnectionState {
    return this.#state
  }

  /** Listens to the client's state. */
  on (event: 'state', listener: (state: ConnectionState, info: StateInfo) => void): () => void
  /** Listens to `error` frames that answer no request (a failed `send()`), and to failures of the client's own hooks. */
  on (event: 'error', listener: (error: RealtimeClientError) => void): () => void
  /** Listens to a server event. */
  on<K extends EventName<R>> (event: K, listener: (data: EventData<R, K>) => void): () => void
  on (event: string, listener: Listener): () => void {
    let listeners = this.#listeners.get(event)
    if (listeners === undefined) this.#listeners.set(event, listeners = new Set())
    listeners.add(listener)
    return () => this.off(event, listener)
  }

  off (event: string, listener: Listener): void {
    this.#listeners.get(event)?.delete(listener)
  }

  /**
   * Fire and forget. Returns true if the message was sent or queued, false
   * if it was dropped (the queue is full, or the client is closed).
   */
  send<K extends MessageName<R>> (type: K, ...args: SendArgs<R, K>): boolean {
    return this.#send(type, args[0], false)
  }

  /** Sends a request; resolves with the reply's `data`, rejects with a RealtimeClientError. */
  request<K extends MessageName<R>> (type: K, ...args: RequestArgs<R, K>): Promise<MessageReply<R, K>> {
    return this.#request(type, args[0], args[1], false)
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

  #send (type: string, data: unknown, direct: boolean): boolean {
    if (this.#state === 'closed') return false
    if (direct || this.#state === 'open') return this.#write({ type, data, id: undefined })
    if (this.#queue.length >= this.#maxQueued) return false
    this.#queue.push({ type, data, id: undefined })
    return true
  }

  #request (type: string, data: unknown, options: RequestOptions | undefined, direct: boolean): Promise<any> {
    if (this.#state === 'closed') return Promise.reject(this.#error(ClientErrorCode.CLOSED, 'The client is closed', type))
    const id = this.#nextId++
    const outgoing = { type, data, id }
    if (!direct && this.#state !== 'open') {
      if (this.#queue.length >= this.#maxQueued) {
        return Promise.reject(this.#error(ClientErrorCode.QUEUE_FULL, 'The offline queue is full', type))
      }
      this.#queue.push(outgoing)
    }
    const timeout = options?.timeout ?? this.#requestTimeout
    positive('timeout', timeout)
    return new Promise((resolve, reject) => {
      const pending: Pending = { type, data, resolve, reject, timer: undefined }
      pending.timer = setTimeout(() => {
        this.#pending.delete(id)
        const queued = this.#queue.indexOf(outgoing)
        if (queued !== -1) this.#queue.splice(queued, 1)
        reject(this.#error(ClientErrorCode.TIMEOUT, `No answer to '${type}' within ${timeout} ms`, type))
      }, timeout)
      this.#pending.set(id, pending)
      if (direct || this.#state === 'open') this.#write(outgoing)
    })
  }

  /** Puts one message on the socket; remembers or forgets what is replayed. */
  #write (outgoing: Outgoing): boolean {
    const socket = this.#socket
    if (socket === undefined || socket.readyState !== OPEN) return false
    const { type, data, id } = outgoing
    socket.send(JSON.stringify(id === undefined ? { type, data } : { type, data, id }))
    const undoes = this.#undoTypes.get(type)
    if (undoes !== undefined) this.#replay.delete(replayKey(undoes, data))
    // A request is remembered once answered (a refused join is not replayed), a send once written.
    if (id === undefined && this.#replayTypes.has(type)) this.#replay.set(replayKey(type, data), { type, data })
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
    this.#emit('error', this.#error(ClientErrorCode.HOOK_FAILED, `token() failed: ${messageOf(err)}`))
    this.#lost({ code: 1006, reason: 'token() failed', opened: false })
  }

  #dial (generation: number, token: string | undefined | null): void {
    let url = this.#url
    if (token != null) {
      const param = encodeURIComponent(this.#options.tokenParam ?? 'token')
      url += `${url.includes('?') ? '&' : '?'}${param}=${encodeURIComponent(token)}`
    }
    this.#status = undefined
    this.#opened = false
    let socket: WebSocketLike
    try {
      socket = new this.#WebSocket(url, this.#options.protocols)
    } catch (err) {
      this.#lost({ code: 1006, reason: messageOf(err), opened: false })
      return
    }
    this.#socket = socket
    this.#connectTimer = setTimeout(() => this.#giveUp(socket, 'connect timeout'), this.#connectTimeout)
    socket.onopen = () => {
      if (generation === this.#generation) void this.#ready(generation)
    }
    socket.onmessage = (event: { data: unknown }) => {
      if (generation === this.#generation) this.#receive(event.data)
    }
    socket.onerror = (event: { message?: unknown }) => {
      // `ws` says why an upgrade was refused ("Unexpected server response: 401"); browsers never do.
      const status = /Unexpected server response: (\d{3})/.exec(String(event?.message))?.[1]
      if (status !== undefined && generation === this.#generation) this.#status = Number(status)
    }
    socket.onclose = (event: { code?: number, reason?: string }) => {
      if (generation !== this.#generation) return
      this.#detach()
      const close: CloseInfo = { code: event.code ?? 1006, reason: event.reason ?? '', opened: this.#opened }
      if (this.#status !== undefined) close.status = this.#status
      this.#lost(close)
    }
  }

  async #ready (generation: number): Promise<void> {
    clearTimeout(this.#connectTimer)
    this.#opened = true
    if (this.#ping !== false) {
      const socket = this.#socket!
      this.#liveness = new Liveness(this.#ping, () => this.#write({ type: 'ping', data: undefined, id: undefined }),
        () => this.#giveUp(socket, 'ping timeout'))
      this.#liveness.start()
    }
    if (this.#everOpened) {
      // Restore the server-side state first: the replay, then the app's hook; the queue goes after both.
      for (const { type, data } of [...this.#replay.values()]) {
        this.#request(type, data, undefined, true).catch((err: RealtimeClientError) => {
          // Only the server's refusal (e.g. FORBIDDEN now) ends a replay; a lost answer is retried next time.
          if (CLIENT_CODES.has(err.code)) return
          this.#replay.delete(replayKey(type, data))
          this.#emit('error', err)
        })
      }
      const hook = this.#options.onReconnect
      if (hook !== undefined) {
        const restorer: Restorer<R> = {
          send: (type, ...args) => this.#send(type, args[0], true),
          request: (type, ...args) => this.#request(type, args[0], args[1], true)
        }
        try {
          await hook(restorer)
        } catch (err) {
          this.#emit('error', this.#error(ClientErrorCode.HOOK_FAILED, `onReconnect failed: ${messageOf(err)}`))
        }
        if (generation !== this.#generation || this.#state === 'closed') return
      }
    }
    this.#everOpened = true
    this.#attempt = 0
    for (const outgoing of this.#queue.splice(0)) this.#write(outgoing)
    this.#setState('open', { attempt: 0 })
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
    if (type === 'reply' || type === 'error') {
      const pending = typeof id === 'number' ? this.#pending.get(id) : undefined
      if (pending === undefined) {
        // An answer to a send (no id), or to a request that already timed out.
        if (type === 'error') this.#emit('error', wireError(message.error, undefined))
        return
      }
      this.#pending.delete(id)
      clearTimeout(pending.timer)
      if (type === 'reply') {
        if (this.#replayTypes.has(pending.type)) this.#replay.set(replayKey(pending.type, pending.data), { type: pending.type, data: pending.data })
        pending.resolve(message.data)
      } else {
        pending.reject(wireError(message.error, pending.type))
      }
      return
    }
    if (type !== 'pong') this.#emit(type, message.data)
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
    const queued = new Set(this.#queue.map((outgoing) => outgoing.id))
    for (const [id, pending] of this.#pending) {
      if (queued.has(id)) continue
      this.#pending.delete(id)
      clearTimeout(pending.timer)
      pending.reject(this.#error(code, code === ClientErrorCode.CLOSED
        ? 'The client is closed'
        : `The connection was lost before '${pending.type}' was answered`, pending.type))
    }
  }

  /** The connection is gone: retry with backoff, or close for good. */
  #lost (close: CloseInfo): void {
    if (this.#state === 'closed') return
    const info = { code: close.code, reason: close.reason, attempt: this.#attempt }
    const policy = this.#reconnect
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
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id)
      clearTimeout(pending.timer)
      pending.reject(this.#error(ClientErrorCode.CLOSED, 'The client is closed', pending.type))
    }
    this.#queue.length = 0
    this.#setState('closed', info)
  }

  #setState (state: ConnectionState, info: StateInfo): void {
    this.#state = state
    this.#emit('state', state, info)
  }

  #emit (event: string, ...args: unknown[]): void {
    const listeners = this.#listeners.get(event)
    if (listeners === undefined) return
    for (const listener of [...listeners]) {
      try {
        listener(...args)
      } catch (err) {
        // A listener's bug is the app's: report it as an uncaught error would be, and keep the connection.
        queueMicrotask(() => { throw err })
      }
    }
  }

  #error (code: string, message: string, type?: string): RealtimeClientError {
    return new RealtimeClientError(code, message, undefined, type)
  }
}

/**
 * An absolute ws:// or wss:// URL. In a page, a path (`/chat`) is resolved
 * against the page's address and http(s) becomes ws(s). A malformed URL is
 * the caller's mistake: it throws now rather than being retried forever.
 */
function webSocketUrl (url: string | URL): string {
  const base = (globalThis as { location?: { href?: string } }).location?.href
  const resolved = new URL(String(url), base)
  if (resolved.protocol === 'http:') resolved.protocol = 'ws:'
  else if (resolved.protocol === 'https:') resolved.protocol = 'wss:'
  if (resolved.protocol !== 'ws:' && resolved.protocol !== 'wss:') throw new TypeError(`Not a WebSocket URL: ${String(url)}`)
  return resolved.href
}

function ignore (): void {}

function replayKey (type: string, data: unknown): string {
  return `${type}\n${JSON.stringify(data) ?? ''}`
}

function wireError (error: { code?: unknown, message?: unknown, details?: unknown } | undefined, type: string | undefined): RealtimeClientError {
  const code = typeof error?.code === 'string' ? error.code : 'INTERNAL'
  const message = typeof error?.message === 'string' ? error.message : code
  const details = Array.isArray(error?.details) ? error.details as ErrorDetail[] : undefined
  return new RealtimeClientError(code, message, details, type)
}

function messageOf (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
