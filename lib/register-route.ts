import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import type { WebSocket } from 'ws'
import { checkOrigin } from './admission.js'
import { FST_RT_INVALID_OPTION, FST_RT_RESERVED_EVENT } from './errors.js'
import type { RealtimeHost } from './host.js'
import type { HookRegistry } from './message-hooks.js'
import { LocalBroker } from './local-broker.js'
import { Namespace } from './namespace.js'
import { resolveRateLimit } from './rate-limit.js'
import { compileEventEncoder, encodeAnyEvent } from './serialize.js'
import { checkEvents, compileAcks, compileMessages, type JsonRouteDefinition, type RawRouteDefinition } from './route.js'
import { JsonRouteRuntime, RawRouteRuntime, type RouteLimits, type RouteRuntime } from './route-runtime.js'
import { kRealtimeUpgrade } from './symbols.js'
import { positiveInteger, resolveHeartbeat, resolveOrigins, resolveRecovery, resolveSlowConsumer } from './validate-options.js'
import { isProtocolToken, markRealtimeUpgrade } from './websocket-compat.js'

type AnyRouteDefinition = (JsonRouteDefinition | RawRouteDefinition) & { path?: string }

/** Route options handed to Fastify unchanged: they run on the upgrade request. */
const FASTIFY_ROUTE_KEYS = ['onRequest', 'preParsing', 'preValidation', 'preHandler', 'preSerialization', 'onSend',
  'onResponse', 'onError', 'onRequestAbort', 'schema', 'config', 'logLevel', 'constraints', 'errorHandler'] as const

/**
 * `app.ws()`: checks and compiles a route once, declares its namespace, and
 * registers the upgrade route on `instance` (which may be an encapsulated
 * child, whose prefix, Fastify hooks and message hooks apply).
 */
export function registerRoute (host: RealtimeHost, hooks: HookRegistry, instance: FastifyInstance, path: string,
  definition: AnyRouteDefinition, selectsProtocols: boolean): Namespace<any> {
  if (definition === null || typeof definition !== 'object') throw new FST_RT_INVALID_OPTION('route', 'an object')
  if (typeof path !== 'string' || !path.startsWith('/')) throw new FST_RT_INVALID_OPTION('path', "a string starting with '/'")
  const options = host.options
  const fullPath = joinPath(instance.prefix, path)
  if (host.namespaces.has(fullPath)) throw new FST_RT_INVALID_OPTION(`route ${fullPath}`, 'declared once')
  // namespace(route) finds a route value's one namespace: a second registration would make it ambiguous.
  const registered = host.byRoute.get(definition)
  if (registered !== undefined) {
    throw new FST_RT_INVALID_OPTION(`route ${fullPath}`, `a route value registered once (it is on ${registered.path} already)`)
  }

  const protocols = resolveProtocols(fullPath, definition.protocols, selectsProtocols)
  const heartbeat = resolveHeartbeat(`${fullPath} heartbeat`, definition.heartbeat, options.heartbeat)
  const telemetry = host.telemetry.route(fullPath)
  const lifecycle = {
    onOpen: definition.onOpen as RouteRuntime['onOpen'],
    onClose: definition.onClose as RouteRuntime['onClose'],
    maxQueuedMessages: options.maxQueuedMessages,
    keepRequest: definition.keepRequest === true,
    limits: {
      maxBufferedBytes: definition.maxBufferedBytes === undefined
        ? options.maxBufferedBytes
        : positiveInteger(`${fullPath} maxBufferedBytes`, definition.maxBufferedBytes),
      slowConsumer: definition.slowConsumer === undefined
        ? options.slowConsumer
        : resolveSlowConsumer(`${fullPath} slowConsumer`, definition.slowConsumer),
      rateLimit: definition.rateLimit === undefined
        ? options.rateLimit
        : resolveRateLimit(`${fullPath} rateLimit`, definition.rateLimit),
      maxRoomsPerConnection: options.maxRoomsPerConnection,
      maxRoomNameLength: options.maxRoomNameLength,
      ackTimeout: options.ackTimeout,
      maxPendingAcks: options.maxPendingAcks,
      canJoin: definition.canJoin as RouteLimits['canJoin'],
      counters: host.counters
    },
    heartbeat: heartbeat === false ? undefined : host.heartbeats.group(heartbeat.interval, heartbeat.timeout),
    telemetry
  }
  const serialize = definition.raw !== true && definition.serialize !== false
  let runtime: RouteRuntime
  if (definition.raw === true) {
    if (typeof definition.onMessage !== 'function') throw new FST_RT_INVALID_OPTION(`${fullPath} onMessage`, 'a function')
    runtime = new RawRouteRuntime(definition.onMessage as RawRouteDefinition['onMessage'], lifecycle)
  } else {
    if (definition.serialize !== undefined && typeof definition.serialize !== 'boolean') {
      throw new FST_RT_INVALID_OPTION(`${fullPath} serialize`, 'a boolean')
    }
    checkEvents(fullPath, definition.events)
    runtime = new JsonRouteRuntime(compileMessages(fullPath, definition.messages as Record<string, unknown> | undefined,
      serialize), lifecycle, hooks.resolver(fullPath, instance, definition), compileAcks(fullPath, definition.acks))
  }
  const presence = definition.presence === undefined || definition.presence === false
    ? undefined
    : { events: definition.presence !== true && definition.presence.events === true }
  const events = definition.raw === true ? undefined : definition.events
  // With presence events on, the plugin itself sends `presence`: a route's own event of that name would be misread.
  if (presence?.events === true && events !== undefined && Object.hasOwn(events, 'presence')) {
    throw new FST_RT_RESERVED_EVENT('presence')
  }
  if (definition.raw === true && (definition as { recovery?: unknown }).recovery !== undefined) {
    throw new FST_RT_INVALID_OPTION(`${fullPath} recovery`, 'left out: a raw route has no session frame')
  }
  const recovery = definition.raw === true ? undefined : resolveRecovery(`${fullPath} recovery`, definition.recovery)
  if (recovery !== undefined && host.broker.createHistory === undefined && !(host.broker instanceof LocalBroker)) {
    throw new FST_RT_INVALID_OPTION(`${fullPath} recovery`, `left out: the ${host.broker.kind} broker has no createHistory()`)
  }
  const namespace = new Namespace<any>(fullPath, host, presence, serialize ? compileEventEncoder(events) : encodeAnyEvent,
    telemetry, recovery)
  host.namespaces.set(fullPath, namespace)
  host.byRoute.set(definition, namespace)

  const origins = definition.allowedOrigins === undefined
    ? options.allowedOrigins
    : resolveOrigins(`${fullPath} allowedOrigins`, definition.allowedOrigins)!
  const route: Record<string, unknown> = {}
  for (const key of FASTIFY_ROUTE_KEYS) {
    if (definition[key] !== undefined) route[key] = definition[key]
  }
  // Cheap refusals first (origin, capacity), before the route's own hooks; the
  // per-user cap last, once the auth hooks have put the user on the request.
  // The mark that tells this upgrade from a plain @fastify/websocket one comes first of all.
  const first = [markRealtimeUpgrade(protocols), ...(origins === '*' ? [] : [checkOrigin(origins)]),
    ...(host.admission.enabled ? [host.admission.checkCapacity] : [])]
  route.onRequest = [...first, ...toArray(route.onRequest)]
  if (options.maxConnectionsPerUser > 0) route.preHandler = [...toArray(route.preHandler), host.admission.checkUserCapacity]
  // An accepted upgrade is hijacked and never reaches onResponse: whatever does was refused.
  route.onResponse = [...toArray(route.onResponse), (_request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    telemetry.upgradeRefused(reply.statusCode)
    done()
  }]

  const log = instance.log
  instance.route({
    ...route,
    method: 'GET',
    url: path,
    websocket: true,
    [kRealtimeUpgrade]: true,
    handler (socket: WebSocket, request: FastifyRequest) {
      host.accept(namespace, runtime, socket, request, log)
    }
  } as unknown as RouteOptions)
  return namespace
}

function resolveProtocols (path: string, value: unknown, selectsProtocols: boolean): readonly string[] | undefined {
  if (value === undefined) return undefined
  if (!selectsProtocols) {
    throw new FST_RT_INVALID_OPTION(`${path} protocols`,
      'left out: @fastify/websocket was registered before fastify-realtime, which then cannot choose the subprotocol')
  }
  if (!Array.isArray(value) || value.length === 0 || !value.every(isProtocolToken) || new Set(value).size !== value.length) {
    throw new FST_RT_INVALID_OPTION(`${path} protocols`, 'a non-empty array of distinct subprotocol names (HTTP tokens)')
  }
  return [...value]
}

function toArray (value: unknown): unknown[] {
  if (value === undefined) return []
  return Array.isArray(value) ? value : [value]
}

function joinPath (prefix: string, path: string): string {
  if (prefix === '' || prefix === '/') return path
  return path === '/' ? prefix : prefix + path
}
