import websocket from '@fastify/websocket'
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { WebSocket } from 'ws'
import { LocalBroker } from './local-broker.js'
import { RedisBroker } from './redis-broker.js'
import { resolveOptions, type RealtimeOptions } from './options.js'
import { Realtime } from './realtime.js'
import type { RouteWithPath } from './route.js'
import { clearUpgradeTimer, installUpgradeGuard, restoreRedactedUrl } from './upgrade-guard.js'
import './types.js'

async function realtimePlugin (fastify: FastifyInstance, opts: RealtimeOptions): Promise<void> {
  const options = resolveOptions(opts)
  if (!fastify.hasDecorator('websocketServer')) {
    await fastify.register(websocket, {
      options: { maxPayload: options.maxPayload, perMessageDeflate: options.perMessageDeflate, clientTracking: false },
      // The plugin closes its own connections with 1001 (the default would send no code).
      preClose: async () => {},
      // ws finishes the close itself on a protocol error (1002, 1007, 1009);
      // terminating here would turn those codes into 1006 for the client.
      errorHandler (error: Error, _socket: WebSocket, request: FastifyRequest) {
        request.log.debug({ err: error }, 'realtime socket error')
      }
    })
  }

  const broker = options.broker ?? (options.redis === undefined
    ? new LocalBroker()
    : new RedisBroker({
      redis: options.redis,
      prefix: options.redisPrefix,
      sharded: options.redisSharded,
      publishTimeout: options.publishTimeout,
      readyTimeout: options.redisReadyTimeout,
      healthCheckInterval: options.redisHealthCheckInterval
    }))
  const realtime = new Realtime(options, broker, fastify.log)
  await broker.start(realtime)
  if (broker instanceof RedisBroker) realtime.presence = realtime.createPresence(broker.client)

  fastify.decorate('realtime', realtime as unknown as FastifyInstance['realtime'])
  fastify.decorate('ws', function ws (this: FastifyInstance, pathOrRoute: string | RouteWithPath<object>, route?: object) {
    return typeof pathOrRoute === 'string'
      ? realtime.addRoute(this, pathOrRoute, route as never)
      : realtime.addRoute(this, pathOrRoute.path, pathOrRoute as never)
  } as unknown as FastifyInstance['ws'])

  const removeGuard = installUpgradeGuard(fastify.server, {
    closing: () => realtime.closing,
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

  fastify.addHook('preClose', async () => {
    await realtime.closeConnections()
  })
  fastify.addHook('onClose', async () => {
    removeGuard()
    await realtime.presence.close()
    await broker.close()
  })
}

/** The plugin: `app.register(realtime, options)`. */
const realtime: FastifyPluginAsync<RealtimeOptions> = fp(realtimePlugin, {
  fastify: '5.x',
  name: 'fastify-realtime'
})

export default realtime
export { realtime }
export type { RealtimeOptions, HeartbeatOptions } from './options.js'
export type { RateLimitOptions } from './rate-limit.js'
export { DEFAULTS } from './options.js'
export { Realtime } from './realtime.js'
export { Connection } from './connection.js'
export { Namespace } from './namespace.js'
export { BroadcastOperator, type ConnectionRef } from './broadcast.js'
export {
  defineRoute,
  type EventMap, type EventName, type EventPayload, type JsonRouteDefinition, type StaticOf, type ReplyOf,
  type MessageDefinitions, type MessageHandler, type MessageSpec, type RawRouteDefinition,
  type RequestUser, type RouteWithPath, type UpgradeRouteOptions
} from './route.js'
export type { RealtimeNamespaces, NamespaceEvents, RealtimeDecorator, WsRouteMethod } from './types.js'
export type { Broker, BrokerHost, BrokerStatus, BroadcastPacket, UserCommand } from './broker.js'
export { LocalBroker } from './local-broker.js'
export { RedisBroker, type RedisBrokerOptions, type RedisBrokerStats, type RedisConnection } from './redis-broker.js'
export { CloseCode } from './close-codes.js'
export { WireErrorCode, RealtimeError, type WireErrorDetail } from './wire-errors.js'
export { encodeEvent, RESERVED_TYPES, type RequestId } from './protocol.js'
export * as errors from './errors.js'
export type { PresenceEntry, PresenceEvent } from './presence.js'
export { RealtimeEmitter, EmitterNamespace, type RealtimeEmitterOptions } from './emitter.js'
