/*
 * Keys of the plugin's internal state and of the methods its classes call on
 * each other. Symbols keep them off the public surface and out of autocompletion.
 */
export const kConnection = Symbol('fastify-realtime.connection')
export const kReceive = Symbol('fastify-realtime.receive')
export const kCleanup = Symbol('fastify-realtime.cleanup')
export const kAlive = Symbol('fastify-realtime.alive')
export const kSendFrame = Symbol('fastify-realtime.sendFrame')
export const kOpen = Symbol('fastify-realtime.open')
export const kAdd = Symbol('fastify-realtime.add')
export const kRemove = Symbol('fastify-realtime.remove')
export const kJoin = Symbol('fastify-realtime.join')
export const kLeave = Symbol('fastify-realtime.leave')
export const kRoomsOf = Symbol('fastify-realtime.roomsOf')
export const kDeliver = Symbol('fastify-realtime.deliver')
export const kPublish = Symbol('fastify-realtime.publish')
export const kEncode = Symbol('fastify-realtime.encode')
export const kRoute = Symbol('fastify-realtime.route')
export const kUpgradeTimer = Symbol('fastify-realtime.upgradeTimer')
export const kOriginalUrl = Symbol('fastify-realtime.originalUrl')
export const kPresenceExpired = Symbol('fastify-realtime.presenceExpired')
export const kTake = Symbol('fastify-realtime.take')
export const kAnswer = Symbol('fastify-realtime.answer')
export const kOverLimit = Symbol('fastify-realtime.overLimit')
export const kAdmission = Symbol('fastify-realtime.admission')
export const kReservation = Symbol('fastify-realtime.reservation')
/** On an upgrade's raw request: routed to one of the plugin's routes; the subprotocol chosen, or '' for none. */
export const kRealtimeUpgrade = Symbol('fastify-realtime.realtimeUpgrade')
/** In a plain @fastify/websocket route's config: not one of the plugin's routes. */
export const kPlainRoute = Symbol('fastify-realtime.plainRoute')
export const kReplayedTo = Symbol('fastify-realtime.replayedTo')
export const kStartSession = Symbol('fastify-realtime.startSession')
export const kHistoryClosed = Symbol('fastify-realtime.historyClosed')
