import websocket from '@fastify/websocket'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { buildAsyncApi, type DocumentedRoute } from './asyncapi.js'
import type { Broker } from './broker.js'
import { FST_RT_ALREADY_REGISTERED, FST_RT_INVALID_OPTION } from './errors.js'
import { RealtimeHost } from './host.js'
import { LocalBroker } from './local-broker.js'
import type { RealtimeOptions, ResolvedOptions } from './options.js'
import { HookRegistry } from './message-hooks.js'
import { contextView, Realtime } from './realtime.js'
import { registerRoute } from './register-route.js'
import type { RouteWithPath } from './route.js'
import { clearUpgradeTimer, installUpgradeGuard, releaseAnsweredUpgrade, restoreRedactedUrl } from './upgrade-guard.js'
import './types.js'
import { resolveOptions } from './validate-options.js'
import { markPlainRoute, releasePlainUpgrade, websocketPluginOptions } from './websocket-compat.js'

async function realtimePlugin (fastify: FastifyInstance, opts: RealtimeOptions): Promise<void> {
  if (fastify.hasDecorator('realtime')) throw new FST_RT_ALREADY_REGISTERED()
  const options = resolveOptions(opts)
  const host = new RealtimeHost(options, await createBroker(options), fastify.log)
  // Registered by the user first: its options stand, and ours for it would be ignored.
  const ownsServer = !fastify.hasDecorator('websocketServer')
  if (ownsServer) {
    await fastify.register(websocket, websocketPluginOptions(options, host))
  } else {
    for (const name of ['maxPayload', 'perMessageDeflate', 'websocket'] as const) {
      if (opts[name] !== undefined) throw new FST_RT_INVALID_OPTION(name, 'set on @fastify/websocket, which was registered first')
    }
  }
  fastify.addHook('onRoute', markPlainRoute)
  fastify.addHook('onRequest', releasePlainUpgrade)

  await host.start()
  const hooks = new HookRegistry()
  const routes: DocumentedRoute[] = []
  const realtime = new Realtime(host, fastify, hooks, () => buildAsyncApi(routes, options.asyncapi))
  fastify.addHook('onReady', async () => { hooks.lock() })

  // One decorator; a child context sees it through a view whose addHook adds to that context.
  const views = new WeakMap<FastifyInstance, Realtime>()
  fastify.decorate('realtime', {
    getter (this: FastifyInstance) {
      if (this === fastify) return realtime
      let view = views.get(this)
      if (view === undefined) {
        view = contextView(realtime, this, hooks)
        views.set(this, view)
      }
      return view
    }
  } as unknown as FastifyInstance['realtime'])
  fastify.decorate('ws', function ws (this: FastifyInstance, pathOrRoute: string | RouteWithPath<object>, route?: object) {
    const namespace = typeof pathOrRoute === 'string'
      ? registerRoute(host, hooks, this, pathOrRoute, route as never, ownsServer)
      : registerRoute(host, hooks, this, pathOrRoute.path, pathOrRoute as never, ownsServer)
    routes.push({ path: namespace.path, definition: typeof pathOrRoute === 'string' ? route! : pathOrRoute })
    return namespace
  } as unknown as FastifyInstance['ws'])
  if (options.asyncapi.path !== undefined) {
    let json: string | undefined
    // Routes are all declared once the app is ready: the document is written once.
    fastify.get(options.asyncapi.path, async (_request, reply) => {
      json ??= JSON.stringify(realtime.asyncapi())
      return reply.type('application/json; charset=utf-8').send(json)
    })
  }

  const removeGuard = installUpgradeGuard(fastify.server, {
    closing: () => host.closing,
    upgradeTimeout: options.upgradeTimeout,
    redactQueryParams: options.redactQueryParams,
    log: fastify.log
  })
  if (options.redactQueryParams.length > 0) {
    fastify.addHook('onRequest', (request, _reply, done) => {
      restoreRedactedUrl(request, options.redactQueryParams)
      done()
    })
  }
  fastify.websocketServer.on('connection', (_socket, request) => { clearUpgradeTimer(request) })
  if (options.upgradeTimeout > 0) fastify.addHook('onResponse', releaseAnsweredUpgrade)

  // Ours closes the plugin's connections then, when the plugin registered @fastify/websocket.
  if (!ownsServer) {
    fastify.addHook('preClose', async () => {
      await host.closeConnections()
    })
  }
  fastify.addHook('onClose', async () => {
    removeGuard()
    await host.close()
  })
}

/** The broker of the options: the user's, Redis (loaded only then, with ioredis), or in memory. */
async function createBroker (options: ResolvedOptions): Promise<Broker> {
  if (options.broker !== undefined) return options.broker
  if (options.redis === undefined) return new LocalBroker()
  const { RedisBroker } = await import('./redis/broker.js')
  return new RedisBroker({
    redis: options.redis,
    prefix: options.redisPrefix,
    sharded: options.redisSharded,
    publishTimeout: options.publishTimeout,
    readyTimeout: options.redisReadyTimeout,
    healthCheckInterval: options.redisHealthCheckInterval
  })
}

/** The plugin: `app.register(realtime, options)`. */
const realtime: FastifyPluginAsync<RealtimeOptions> = fp(realtimePlugin, {
  fastify: '5.x',
  name: 'fastify-realtime'
})

export default realtime
export { realtime }
export type { RealtimeOptions, HeartbeatOptions, RedisOption, WebsocketCompatOptions, WebsocketServerOptions, AsyncApiOptions } from './options.js'
export type { AsyncApiDocument } from './asyncapi.js'
export type { RealtimeMessage, PreMessageHook, OnMessageErrorHook, MessageHookName } from './message-hooks.js'
export type { RateLimitOptions } from './rate-limit.js'
export type { History, HistoryOptions, ResumeOutcome, ResumeRefusal, SequencedPacket, SessionHolder } from './history.js'
export { DEFAULTS } from './options.js'
export { Connection } from './connection.js'
export { InjectedClient, InjectUpgradeError, type InjectOptions, type InjectedClose } from './inject.js'
export { Namespace } from './namespace.js'
export { BroadcastOperator, type ConnectionRef } from './broadcast.js'
export {
  defineRoute,
  type EventMap, type EventName, type EventPayload, type JsonRouteDefinition, type StaticOf, type ReplyOf,
  type MessageDefinitions, type MessageHandler, type MessageSpec, type RawRouteDefinition,
  type RequestUser, type UserOf, type RouteWithPath, type UpgradeRouteOptions, type FastifyUpgradeOptions, type UpgradeHook, type UpgradeRequest,
  type WsRouteGeneric, type UpgradeTypes, type DefaultUpgradeTypes, type ResolveUpgradeTypes, type RouteConnection, type RecoveryOptions,
  type AckAnswer, type AckAnswers
} from './route.js'
export type { AckOptions } from './acks.js'
export type { RealtimeNamespaces, NamespaceEvents, RealtimeDecorator, WsRouteMethod } from './types.js'
export type { Broker, BrokerHost, BrokerStatus, BroadcastPacket, UserCommand } from './broker.js'
export type { PresenceEntry, PresenceEvent, PresenceStore, PresenceStoreOptions } from './presence.js'
export { LocalBroker } from './local-broker.js'
export { CHANNELS, type MessageTraceContext, type ConnectionOpenMessage, type ConnectionCloseMessage, type BrokerStatusMessage } from './tracing.js'
export { INSTRUMENTS, METER_NAME, type InstrumentSpec, type InstrumentKind } from './metrics.js'
export { CloseCode, closeCodeAllowsReconnect } from './protocol/close-codes.js'
export { WireErrorCode, RealtimeError, type WireErrorDetail } from './protocol/wire-errors.js'
export { encodeEvent, RESERVED_EVENTS, RESERVED_TYPES, type RequestId } from './protocol/envelope.js'
export * as errors from './errors.js'
