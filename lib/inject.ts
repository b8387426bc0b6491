import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import type { WebSocket } from 'ws'
import type { EventData, EventName, MessageData, MessageName, MessageReply, RouteShape } from './client/types.js'
import { RealtimeError, type WireErrorDetail } from './protocol/wire-errors.js'

/*
 * A protocol-aware test client on @fastify/websocket's injectWS: the
 * route's hooks run on the upgrade, frames go through the route's handlers,
 * and no port is opened. Typed from the route, like the client.
 */

/** What an injected upgrade carries: the query string and headers of the request. */
export interface InjectOptions {
  /** Query-string parameters, e.g. `{ token: 'alice' }`. */
  query?: Record<string, string | number | boolean>
  /** Request headers, e.g. `{ authorization: 'Bearer ...' }`. */
  headers?: Record<string, string>
}

/** How an injected connection ended. */
export interface InjectedClose {
  code: number
  reason: string
}

/** An upgrade the route's hooks refused: the HTTP status is in `statusCode`. */
export class InjectUpgradeError extends Error {
  readonly statusCode: number

  constructor (statusCode: number) {
    super(`Upgrade refused with HTTP ${statusCode}`)
    this.name = 'InjectUpgradeError'
    this.statusCode = statusCode
  }
}

interface Frame {
  type?: unknown
  id?: unknown
  data?: unknown
  error?: { code: string, message: string, details?: WireErrorDetail[] }
}

let requestSequence = 0

/**
 * One injected connection. Frames are buffered from the start, so a test
 * never races its own listener: `next(type)` takes the oldest unread event
 * of that type.
 */
export class InjectedClient<R extends RouteShape = RouteShape> {
  /** The client end of the connection (a `ws` WebSocket), for what this class does not cover. */
  readonly socket: WebSocket
  /** Settles when the connection is closed, with the code and reason the client saw. */
  readonly closed: Promise<InjectedClose>
  readonly #frames: Frame[] = []
  readonly #waiters: Array<{ match: (frame: Frame) => boolean, resolve: (frame: Frame) => void, reject: (err: Error) => void }> = []
  #closedWith: InjectedClose | undefined

  constructor (socket: WebSocket) {
    this.socket = socket
    socket.on('message', (data: Buffer) => this.#receive(data))
    this.closed = new Promise((resolve) => {
      socket.once('close', (code: number, reason: Buffer) => {
        this.#closedWith = { code, reason: reason.toString() }
        for (const waiter of this.#waiters.splice(0)) {
          waiter.reject(new Error(`connection closed with ${code} while waiting for a frame`))
        }
        resolve(this.#closedWith)
      })
    })
  }

  /** Sends a message without waiting for an answer. */
  send<K extends MessageName<R>> (type: K, data?: MessageData<R, K>): void {
    this.socket.send(JSON.stringify({ type, data }))
  }

  /**
   * Sends a request and resolves with its reply's data; rejects with a
   * RealtimeError carrying the server's error code, message and details.
   */
  async request<K extends MessageName<R>> (type: K, data?: MessageData<R, K>): Promise<MessageReply<R, K>> {
    const id = `inject-${++requestSequence}`
    const answered = this.#take((frame) => frame.id === id && (frame.type === 'reply' || frame.type === 'error'))
    this.socket.send(JSON.stringify({ type, data, id }))
    const frame = await answered
    if (frame.type === 'error') {
      const error = frame.error!
      throw new RealtimeError(error.code, error.message, error.details)
    }
    return frame.data as MessageReply<R, K>
  }

  /** Resolves with the data of the next event of `type` (buffered ones first). */
  async next<K extends EventName<R>> (type: K): Promise<EventData<R, K>> {
    const frame = await this.#take((candidate) => candidate.type === type && candidate.id === undefined)
    return frame.data as EventData<R, K>
  }

  /** Closes the connection and resolves once it is closed. */
  close (code = 1000, reason = ''): Promise<InjectedClose> {
    if (this.#closedWith === undefined) this.socket.close(code, reason)
    return this.closed
  }

  #take (match: (frame: Frame) => boolean): Promise<Frame> {
    const index = this.#frames.findIndex(match)
    if (index !== -1) return Promise.resolve(this.#frames.splice(index, 1)[0]!)
    if (this.#closedWith !== undefined) return Promise.reject(new Error(`connection closed with ${this.#closedWith.code}`))
    return new Promise((resolve, reject) => { this.#waiters.push({ match, resolve, reject }) })
  }

  #receive (data: Buffer): void {
    let frame: Frame
    try {
      frame = JSON.parse(data.toString()) as Frame
    } catch {
      return
    }
    const index = this.#waiters.findIndex((waiter) => waiter.match(frame))
    if (index === -1) {
      this.#frames.push(frame)
      return
    }
    this.#waiters.splice(index, 1)[0]!.resolve(frame)
  }
}

/** Opens an injected connection on `path`; rejects with InjectUpgradeError when a hook refuses the upgrade. */
export async function injectConnection<R extends RouteShape> (app: FastifyInstance, path: string,
  options: InjectOptions = {}): Promise<InjectedClient<R>> {
  const query = options.query === undefined
    ? ''
    : '?' + new URLSearchParams(Object.entries(options.query).map(([key, value]): [string, string] => [key, String(value)])).toString()
  let client: InjectedClient<R> | undefined
  try {
    await app.injectWS(path + query, { headers: options.headers ?? {} }, {
      // Listeners go on before the socket opens, so the first frames are kept.
      onInit: (socket) => { client = new InjectedClient<R>(socket) }
    })
  } catch (err) {
    const status = /Unexpected server response: (\d+)/.exec((err as Error).message)
    if (status !== null) throw new InjectUpgradeError(Number(status[1]))
    throw err
  }
  return client!
}

/**
 * An injected upgrade's stream ends but never closes by itself, where a TCP
 * socket closes once both sides have ended; `ws` reports a connection closed
 * only on 'close' (else after its 30 s close timeout). Close it the same way.
 */
export function closeInjectedStreamOnEnd (request: IncomingMessage, stream: Duplex): void {
  if (request.socket !== undefined) return
  stream.once('end', () => { stream.destroy() })
}
