import type { IncomingMessage } from 'node:http'
import type { WebsocketPluginOptions } from '@fastify/websocket'
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import type { WebSocket, WebSocketServer } from 'ws'
import { FST_RT_UNSUPPORTED_PROTOCOL } from './errors.js'
import type { RealtimeHost } from './host.js'
import type { ResolvedOptions } from './options.js'
import { kConnection, kPlainRoute, kRealtimeUpgrade } from './symbols.js'
import { clearUpgradeTimer } from './upgrade-guard.js'

/*
 * Plain @fastify/websocket routes (`{ websocket: true }`) beside the
 * plugin's, on the one ws server the plugin registers: each kind keeps its
 * own shutdown, error handling and subprotocol choice. An upgrade routed to
 * one of the plugin's routes carries a mark on its raw request (set by the
 * route's first onRequest hook); every other upgrade is a plain one.
 */

type Hook = (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => void
type MarkedRequest = IncomingMessage & { [kRealtimeUpgrade]?: string }
type ErrorHandler = NonNullable<WebsocketPluginOptions['errorHandler']>
type PreClose = NonNullable<WebsocketPluginOptions['preClose']>

/** Whether an upgrade request was routed to one of the plugin's routes. */
export function isRealtimeUpgrade (raw: IncomingMessage): boolean {
  return (raw as MarkedRequest)[kRealtimeUpgrade] !== undefined
}

/** The options the plugin registers @fastify/websocket with. */
export function websocketPluginOptions (options: ResolvedOptions, host: RealtimeHost): WebsocketPluginOptions {
  const { serverOptions, errorHandler, preClose } = options.websocket
  const { handleProtocols, verifyClient, ...rest } = serverOptions
  return {
    options: {
      ...rest,
      maxPayload: options.maxPayload,
      perMessageDeflate: options.perMessageDeflate,
      handleProtocols: selectProtocol(handleProtocols),
      ...(verifyClient === undefined ? {} : { verifyClient: verifyPlainClients(verifyClient) })
    } as WebsocketPluginOptions['options'],
    errorHandler: handleErrors(errorHandler),
    preClose: closeAll(host, preClose)
  }
}

/**
 * ws's subprotocol choice: the one the route's onRequest hook chose, else
 * the user's handleProtocols, else none (ws alone would echo whatever the
 * client offered first).
 */
function selectProtocol (user: ((offered: Set<string>, request: IncomingMessage) => string | false) | undefined) {
  return function handleProtocols (offered: Set<string>, request: IncomingMessage): string | false {
    const chosen = (request as MarkedRequest)[kRealtimeUpgrade]
    if (chosen !== undefined && chosen !== '') return chosen
    return user === undefined ? false : user(offered, request)
  }
}

type VerifyClient = NonNullable<NonNullable<WebsocketPluginOptions['options']>['verifyClient']>
type VerifyInfo = { req: IncomingMessage } & Record<string, unknown>

/** The user's verifyClient, for plain routes only: the plugin's routes have their hooks. It keeps its arity (ws reads it). */
function verifyPlainClients (verify: VerifyClient): VerifyClient {
  if (verify.length >= 2) {
    const verifyAsync = verify as (info: VerifyInfo, callback: (result: boolean, ...rest: unknown[]) => void) => void
    return function verifyClient (info: VerifyInfo, callback: (result: boolean, ...rest: unknown[]) => void): void {
      // ws's callback takes the verdict first, not an error.
      // eslint-disable-next-line n/no-callback-literal
      if (isRealtimeUpgrade(info.req)) callback(true)
      else verifyAsync(info, callback)
    } as unknown as VerifyClient
  }
  const verifySync = verify as (info: VerifyInfo) => boolean
  return function verifyClient (info: VerifyInfo): boolean {
    return isRealtimeUpgrade(info.req) || verifySync(info)
  } as unknown as VerifyClient
}

/**
 * @fastify/websocket's errorHandler: the plugin's routes log at debug (ws
 * finishes a protocol-error close itself, with 1002, 1007 or 1009, which a
 * terminate would turn into 1006); plain routes get the user's handler or
 * @fastify/websocket's default (logged at error, socket terminated).
 */
function handleErrors (user: ErrorHandler | undefined): ErrorHandler {
  return function errorHandler (this: FastifyInstance, error: Error, socket: WebSocket, request: FastifyRequest, reply: FastifyReply) {
    if (isRealtimeUpgrade(request.raw)) {
      request.log.debug({ err: error }, 'realtime socket error')
    } else if (user !== undefined) {
      user.call(this, error, socket, request, reply)
    } else {
      request.log.error(error)
      socket.terminate()
    }
  }
}

/**
 * @fastify/websocket's preClose. Default: the plugin's clients get 1001 and
 * are awaited (up to closeTimeout); plain clients get what
 * @fastify/websocket's default gives them, a close without a code, and the ws
 * server stops taking upgrades. A user's preClose runs once the plugin's
 * clients are gone, so it may wait on `websocketServer.close()`.
 */
function closeAll (host: RealtimeHost, user: PreClose | undefined) {
  return async function preClose (this: FastifyInstance): Promise<void> {
    if (user !== undefined) {
      await host.closeConnections()
      await runPreClose(user, this)
      return
    }
    const ours = host.closeConnections()
    const server: WebSocketServer = this.websocketServer
    for (const client of server.clients ?? []) {
      if ((client as WebSocket & { [kConnection]?: unknown })[kConnection] === undefined) client.close()
    }
    server.close()
    await ours
  }
}

function runPreClose (preClose: PreClose, app: FastifyInstance): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (err?: Error): void => { if (err == null) resolve(); else reject(err) }
    // A preClose with a parameter is callback-style (done), as Fastify hooks are.
    if (preClose.length >= 1) {
      (preClose as (this: FastifyInstance, done: (err?: Error) => void) => void).call(app, settle)
      return
    }
    Promise.resolve((preClose as (this: FastifyInstance) => unknown).call(app)).then(() => resolve(), reject)
  })
}

/** onRoute: marks plain `{ websocket: true }` routes, so the upgrade deadline can let them go. */
export function markPlainRoute (routeOptions: RouteOptions): void {
  const route = routeOptions as RouteOptions & { websocket?: boolean, [kRealtimeUpgrade]?: true }
  if (route.websocket !== true || route[kRealtimeUpgrade] === true) return
  route.config = { ...route.config, [kPlainRoute]: true } as RouteOptions['config']
}

/**
 * onRequest, every request: `upgradeTimeout` covers the plugin's routes
 * only, so a plain route's upgrade loses its deadline as soon as it is
 * routed (a hook registered before the plugin still runs under it).
 */
export const releasePlainUpgrade: Hook = (request, _reply, done) => {
  if (request.ws && (request.routeOptions.config as unknown as Record<symbol, unknown>)[kPlainRoute] === true) clearUpgradeTimer(request.raw)
  done()
}

/** RFC 6455 subprotocol names are HTTP tokens. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** Whether a string is a valid subprotocol name. */
export function isProtocolToken (value: unknown): value is string {
  return typeof value === 'string' && TOKEN.test(value)
}

/**
 * onRequest, first on each of the plugin's routes: marks the upgrade as the
 * plugin's and chooses its subprotocol, the first the client offered that
 * the route speaks. A client that offered some and none of the route's is
 * refused with 400 (a browser would fail the connection anyway); a client
 * that offered none is let in without one.
 */
export function markRealtimeUpgrade (protocols: readonly string[] | undefined): Hook {
  return function markUpgrade (request, _reply, done) {
    const raw = request.raw as MarkedRequest
    raw[kRealtimeUpgrade] = ''
    const header = request.headers['sec-websocket-protocol']
    if (protocols === undefined || header === undefined) {
      done()
      return
    }
    const offered = (Array.isArray(header) ? header.join(',') : header).split(',').map((name) => name.trim())
    const chosen = offered.find((name) => protocols.includes(name))
    if (chosen === undefined) {
      done(new FST_RT_UNSUPPORTED_PROTOCOL(protocols.join(', ')))
      return
    }
    raw[kRealtimeUpgrade] = chosen
    done()
  }
}
