import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { Test } from 'tap'
import WebSocket from 'ws'
import realtime, { type RealtimeOptions } from '../lib/index.js'

/** A tap test. */
export type TestContext = Test

export interface BuildOptions {
  realtime?: RealtimeOptions
  fastify?: FastifyServerOptions
}

/**
 * A listening app on 127.0.0.1 port 0 with the plugin registered and
 * `setup` run before listen; closed at teardown.
 */
export async function build (t: TestContext, setup: (app: FastifyInstance) => void | Promise<void>,
  options: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, ...options.fastify })
  t.teardown(() => app.close())
  await app.register(realtime, options.realtime ?? {})
  await setup(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  return app
}

/** ws:// URL of a path on a listening app. */
export function wsUrl (app: FastifyInstance, path: string): string {
  return `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}${path}`
}

/** http:// URL of a path on a listening app. */
export function httpUrl (app: FastifyInstance, path: string): string {
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}${path}`
}

let requestSequence = 0

export interface CloseEvent { code: number, reason: string }

/**
 * A real `ws` client that buffers every frame from the moment it connects,
 * so a test can await them in order and never races its own listener.
 */
export class TestClient {
  readonly ws: WebSocket
  readonly closed: Promise<CloseEvent>
  readonly #frames: string[] = []
  readonly #waiters: Array<(frame: string) => void> = []

  constructor (ws: WebSocket) {
    this.ws = ws
    ws.on('message', (data) => {
      const frame = data.toString()
      const waiter = this.#waiters.shift()
      if (waiter !== undefined) waiter(frame)
      else this.#frames.push(frame)
    })
    this.closed = new Promise((resolve) => {
      ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }))
    })
    ws.on('error', () => {})
  }

  /** The next frame, as text. */
  nextRaw (): Promise<string> {
    const frame = this.#frames.shift()
    if (frame !== undefined) return Promise.resolve(frame)
    return new Promise((resolve, reject) => {
      this.#waiters.push(resolve)
      this.closed.then(() => reject(new Error('connection closed while waiting for a frame')), () => {})
    })
  }

  /** The next frame, parsed. */
  async next (): Promise<any> {
    return JSON.parse(await this.nextRaw())
  }

  /** Frames received and not yet taken. */
  get pending (): number {
    return this.#frames.length
  }

  /** Sends a value as a JSON text frame. */
  send (message: unknown): void {
    this.ws.send(JSON.stringify(message))
  }

  /** Sends a request and returns its answer; other frames stay queued, in order. */
  async request (type: string, data: unknown, id: string | number = `r${++requestSequence}`): Promise<any> {
    this.send({ type, data, id })
    const skipped: string[] = []
    try {
      for (;;) {
        const frame = await this.next()
        if (frame.id === id && (frame.type === 'reply' || frame.type === 'error')) return frame
        skipped.push(JSON.stringify(frame))
      }
    } finally {
      this.#frames.unshift(...skipped)
    }
  }

  /** Closes and waits for the close to complete. */
  async close (code = 1000): Promise<CloseEvent> {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code)
    return this.closed
  }
}

export interface ConnectOptions {
  headers?: Record<string, string>
  origin?: string
}

/** Connects a TestClient; rejects if the upgrade is refused. Closed at teardown. */
export async function connect (t: TestContext, app: FastifyInstance, path: string, options: ConnectOptions = {}): Promise<TestClient> {
  return opened(t, new WebSocket(wsUrl(app, path), { headers: options.headers, origin: options.origin }))
}

/**
 * A TestClient on a socket the caller dialled (any URL, TLS or proxy
 * options), once it is open; rejects if the upgrade is refused. Closed at teardown.
 */
export async function opened (t: TestContext, ws: WebSocket): Promise<TestClient> {
  const client = new TestClient(ws)
  t.teardown(() => { ws.terminate() })
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused with ${res.statusCode}`)))
    ws.once('error', reject)
  })
  return client
}

/** The HTTP status of an upgrade the caller dialled that must be refused; rejects if the server switched protocols. */
export async function refusedStatus (ws: WebSocket): Promise<number> {
  ws.on('error', () => {})
  return new Promise((resolve, reject) => {
    ws.once('upgrade', () => reject(new Error('switched protocols')))
    ws.once('unexpected-response', (_req, res) => {
      res.resume()
      ws.terminate()
      resolve(res.statusCode ?? 0)
    })
  })
}

export interface Refusal {
  statusCode: number
  body: string
  /** Whether the server ever switched protocols (it must not). */
  upgraded: boolean
}

/** Attempts an upgrade that must be refused; resolves with the HTTP answer. */
export async function refusedUpgrade (app: FastifyInstance, path: string, options: ConnectOptions = {}): Promise<Refusal> {
  const ws = new WebSocket(wsUrl(app, path), { headers: options.headers, origin: options.origin })
  let upgraded = false
  ws.on('upgrade', () => { upgraded = true })
  ws.on('error', () => {})
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.terminate()
      reject(new Error('the upgrade was accepted'))
    })
    ws.once('unexpected-response', (_req, res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => {
        ws.terminate()
        resolve({ statusCode: res.statusCode ?? 0, body, upgraded })
      })
    })
  })
}

/**
 * Records uncaught exceptions and unhandled rejections from now on; the
 * returned function asserts there were none (call it at the end of a test).
 */
export function guardProcess (t: TestContext): () => void {
  const seen: unknown[] = []
  const record = (err: unknown): void => { seen.push(err) }
  process.on('uncaughtException', record)
  process.on('unhandledRejection', record)
  const stop = (): void => {
    process.off('uncaughtException', record)
    process.off('unhandledRejection', record)
  }
  t.teardown(stop)
  return () => {
    stop()
    t.same(seen.map(String), [], 'no uncaught exception or unhandled rejection')
  }
}

/** Resolves with the next `event` of `emitter`. */
export async function nextEvent (emitter: NodeJS.EventEmitter, event: string): Promise<unknown[]> {
  return once(emitter, event)
}

/** A promise with its resolve exposed, for hooks a test holds open. */
export function deferred<T = void> (): { promise: Promise<T>, resolve: (value: T) => void } {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((_resolve) => { resolve = _resolve })
  return { promise, resolve }
}

/**
 * Waits for a condition of this process's own bookkeeping (a count, a map),
 * a bounded number of event-loop turns: the server's close handling runs in
 * between. For conditions no event announces.
 */
export async function waitUntil (condition: () => boolean | Promise<boolean>, turns = 10_000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (await condition()) return
    await new Promise((resolve) => setImmediate(resolve))
  }
  throw new Error(`condition not reached in ${turns} event-loop turns`)
}

export interface PollOptions {
  /** Gives up (throws) after this many ms. */
  timeout?: number
  /** Waits this many ms between checks. */
  interval?: number
}

/**
 * Waits for a condition that depends on other processes (Redis, a child
 * instance, network round trips), checked every `interval` ms until
 * `timeout` ms have passed. For conditions no event announces.
 */
export async function pollUntil (condition: () => boolean | Promise<boolean>,
  { timeout = 10_000, interval = 25 }: PollOptions = {}): Promise<void> {
  const deadline = Date.now() + timeout
  for (;;) {
    if (await condition()) return
    if (Date.now() >= deadline) throw new Error(`condition not reached in ${timeout} ms`)
    await new Promise((resolve) => setTimeout(resolve, interval))
  }
}

/** Connects to a route of the chat test apps as `user` (`?user=`) and joins rooms, each join answered. */
export async function member (t: TestContext, app: FastifyInstance, user: string, rooms: string[] = [], path = '/chat'): Promise<TestClient> {
  const client = await connect(t, app, `${path}?user=${user}`)
  for (const room of rooms) t.match(await client.request('join', { room }), { type: 'reply' })
  return client
}
