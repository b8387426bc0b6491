import createError, { type FastifyErrorConstructor } from '@fastify/error'

/*
 * Errors the plugin throws or rejects with in the server process. Callers
 * match `err.code`; a code is never renamed or reused. Errors a client sees
 * on the wire are in wire-errors.ts.
 */

/** A plugin or route option is out of range or of the wrong type. Thrown at `register` or `app.ws()`. */
export const FST_RT_INVALID_OPTION: FastifyErrorConstructor<{ code: string }, [string, string]> = createError<[string, string]>(
  'FST_RT_INVALID_OPTION', "Option '%s' must be %s", 500, TypeError)

/** A route declares a message type the protocol reserves (`ping`, `pong`, `reply`, `error`). */
export const FST_RT_RESERVED_TYPE: FastifyErrorConstructor<{ code: string }, [string]> = createError<[string]>(
  'FST_RT_RESERVED_TYPE', "Message type '%s' is reserved by the protocol", 500, TypeError)

/** `realtime.namespace(path)` names a path no WebSocket route was declared on. */
export const FST_RT_UNKNOWN_NAMESPACE: FastifyErrorConstructor<{ code: string }, [string]> = createError<[string]>(
  'FST_RT_UNKNOWN_NAMESPACE', "No WebSocket route is declared on '%s'", 500)

/** The upgrade request's Origin is not in the allowlist: answered with HTTP 403 before any upgrade. */
export const FST_RT_ORIGIN_FORBIDDEN: FastifyErrorConstructor<{ code: string }, []> = createError(
  'FST_RT_ORIGIN_FORBIDDEN', 'Origin not allowed', 403)

/** The broker could not publish in time (Redis unreachable); local delivery already happened. */
export const FST_RT_BROKER_UNAVAILABLE: FastifyErrorConstructor<{ code: string }, [string]> = createError<[string]>(
  'FST_RT_BROKER_UNAVAILABLE', 'Broker unavailable: %s', 503)

/** `presence()` on a namespace whose route did not turn presence on. */
export const FST_RT_PRESENCE_DISABLED: FastifyErrorConstructor<{ code: string }, [string]> = createError<[string]>(
  'FST_RT_PRESENCE_DISABLED', "Presence is not enabled on '%s' (route option presence)", 500)

/** The instance is at `maxConnections`: the upgrade is refused with HTTP 503. */
export const FST_RT_TOO_MANY_CONNECTIONS: FastifyErrorConstructor<{ code: string }, []> = createError(
  'FST_RT_TOO_MANY_CONNECTIONS', 'Too many connections', 503)

/** The user or the IP is at `maxConnectionsPerUser` / `maxConnectionsPerIp`: the upgrade is refused with HTTP 429. */
export const FST_RT_CONNECTION_LIMIT: FastifyErrorConstructor<{ code: string }, [string]> = createError<[string]>(
  'FST_RT_CONNECTION_LIMIT', 'Too many connections for this %s', 429)

/** Every error code above, for the README check and for callers that switch on codes. */
export const PLUGIN_ERROR_CODES = [
  'FST_RT_INVALID_OPTION',
  'FST_RT_RESERVED_TYPE',
  'FST_RT_UNKNOWN_NAMESPACE',
  'FST_RT_ORIGIN_FORBIDDEN',
  'FST_RT_BROKER_UNAVAILABLE',
  'FST_RT_PRESENCE_DISABLED',
  'FST_RT_TOO_MANY_CONNECTIONS',
  'FST_RT_CONNECTION_LIMIT'
] as const
