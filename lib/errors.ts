import createError, { type FastifyErrorConstructor } from '@fastify/error'

/**
 * The class of one error code, taking the message's arguments. Every
 * constant is annotated with it: left to inference, the emitted declaration
 * names `createError`'s namespace, which `moduleResolution: bundler` cannot find.
 */
export type ErrorClass<A extends unknown[] = []> = FastifyErrorConstructor<{ code: string }, A>

/*
 * Every error code of the plugin, declared here and nowhere else: what it
 * throws or rejects with in the server process, and the HTTP answers it
 * gives to refused upgrades. Callers match `err.code`; a code is never
 * renamed or reused. docs/errors.md lists them (test/docs.test.ts checks
 * both ways). Errors a client sees on the wire are in protocol/wire-errors.ts.
 */

/** A plugin or route option is out of range or of the wrong type. Thrown at `register` or `app.ws()`. */
export const FST_RT_INVALID_OPTION: ErrorClass<[string, string]> = createError<[string, string]>(
  'FST_RT_INVALID_OPTION', "Option '%s' must be %s", 500, TypeError)

/** A route declares a message type the protocol reserves (`ping`, `pong`, `reply`, `error`). */
export const FST_RT_RESERVED_TYPE: ErrorClass<[string]> = createError<[string]>(
  'FST_RT_RESERVED_TYPE', "Message type '%s' is reserved by the protocol", 500, TypeError)

/** A route declares an event the protocol or the client reserves (`error`, `reply`, `pong`, `ping`, `session`, `state`). Thrown at `app.ws()`. */
export const FST_RT_RESERVED_EVENT: ErrorClass<[string]> = createError<[string]>(
  'FST_RT_RESERVED_EVENT', "Event name '%s' is reserved by the protocol or the client", 500, TypeError)

/** `realtime.namespace(path)` names a path no WebSocket route was declared on. */
export const FST_RT_UNKNOWN_NAMESPACE: ErrorClass<[string]> = createError<[string]>(
  'FST_RT_UNKNOWN_NAMESPACE', "No WebSocket route is declared on '%s'", 500)

/** The upgrade request's Origin is not in the allowlist: answered with HTTP 403 before any upgrade. */
export const FST_RT_ORIGIN_FORBIDDEN: ErrorClass = createError(
  'FST_RT_ORIGIN_FORBIDDEN', 'Origin not allowed', 403)

/** The broker could not publish in time (Redis unreachable); local delivery already happened. */
export const FST_RT_BROKER_UNAVAILABLE: ErrorClass<[string]> = createError<[string]>(
  'FST_RT_BROKER_UNAVAILABLE', 'Broker unavailable: %s', 503)

/** `presence()` on a namespace whose route did not turn presence on. */
export const FST_RT_PRESENCE_DISABLED: ErrorClass<[string]> = createError<[string]>(
  'FST_RT_PRESENCE_DISABLED', "Presence is not enabled on '%s' (route option presence)", 500)

/** The instance is at `maxConnections`: the upgrade is refused with HTTP 503. */
export const FST_RT_TOO_MANY_CONNECTIONS: ErrorClass = createError(
  'FST_RT_TOO_MANY_CONNECTIONS', 'Too many connections', 503)

/** The user or the IP is at `maxConnectionsPerUser` / `maxConnectionsPerIp`: the upgrade is refused with HTTP 429. */
export const FST_RT_CONNECTION_LIMIT: ErrorClass<[string]> = createError<[string]>(
  'FST_RT_CONNECTION_LIMIT', 'Too many connections for this %s', 429)

/** `app.close()` has begun: a new upgrade is answered with HTTP 503 and its socket closed. */
export const FST_RT_CLOSING: ErrorClass = createError(
  'FST_RT_CLOSING', 'Server is shutting down', 503)

/** The upgrade request's hooks took longer than `upgradeTimeout`: answered with HTTP 503 and its socket closed. */
export const FST_RT_UPGRADE_TIMEOUT: ErrorClass = createError(
  'FST_RT_UPGRADE_TIMEOUT', 'Upgrade timed out', 503)

/** The plugin is registered a second time in the same app (a child context sees the parent's registration). */
export const FST_RT_ALREADY_REGISTERED: ErrorClass = createError(
  'FST_RT_ALREADY_REGISTERED', 'fastify-realtime is already registered in this app', 500)

/** The client offered subprotocols and none is one of the route's `protocols`: answered with HTTP 400 before the upgrade. */
export const FST_RT_UNSUPPORTED_PROTOCOL: ErrorClass<[string]> = createError<[string]>(
  'FST_RT_UNSUPPORTED_PROTOCOL', 'None of the offered subprotocols is spoken here (it speaks %s)', 400)

/** `addHook()` once the app is ready: a route's hooks are fixed by then. */
export const FST_RT_HOOK_AFTER_READY: ErrorClass<[string]> = createError<[string]>(
  'FST_RT_HOOK_AFTER_READY', "Hook '%s' added after the app became ready: add hooks before app.ready() or app.listen()", 500)

/** `conn.emitWithAck()`: the client did not answer within the timeout (`ackTimeout`, or the call's `timeout`). */
export const FST_RT_ACK_TIMEOUT: ErrorClass<[string, string]> = createError<[string, string]>(
  'FST_RT_ACK_TIMEOUT', "No answer to '%s' within %s ms", 500)

/** `conn.emitWithAck()` on a connection that closed before the client answered (or was closed already). */
export const FST_RT_ACK_CLOSED: ErrorClass<[string]> = createError<[string]>(
  'FST_RT_ACK_CLOSED', "The connection closed before '%s' was answered", 500)

/** `conn.emitWithAck()` while `maxPendingAcks` answers are awaited on the connection: nothing is sent. */
export const FST_RT_ACK_LIMIT: ErrorClass<[string]> = createError<[string]>(
  'FST_RT_ACK_LIMIT', 'Too many answers awaited on this connection (maxPendingAcks %s)', 500)

/** The client's answer to `conn.emitWithAck()` does not match the route's `acks` schema for the event. */
export const FST_RT_ACK_INVALID: ErrorClass<[string, string]> = createError<[string, string]>(
  'FST_RT_ACK_INVALID', "The answer to '%s' does not match its ack schema: %s", 500)

/** `conn.emitWithAck()` on a raw route: its frames go to `onMessage`, so no answer can be read. */
export const FST_RT_ACK_UNSUPPORTED: ErrorClass<[string]> = createError<[string]>(
  'FST_RT_ACK_UNSUPPORTED', "emitWithAck() is not available on the raw route '%s'", 500)
