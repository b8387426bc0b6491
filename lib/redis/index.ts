/*
 * fastify-realtime/redis: everything that needs ioredis. The plugin loads
 * it only when the `redis` option is set; import it yourself for the
 * emitter (publishing from a process without a WebSocket server) or to
 * build a RedisBroker by hand.
 */
export { RedisBroker, type RedisBrokerOptions, type RedisBrokerStats } from './broker.js'
export type { RedisClient, RedisConnection } from './connection.js'
export { RealtimeEmitter, EmitterNamespace, type RealtimeEmitterOptions, type EmitterNamespaceOptions } from './emitter.js'
export type { PublishCounters } from './publisher.js'
