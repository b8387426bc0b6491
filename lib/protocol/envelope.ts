import type { WireErrorDetail } from './wire-errors.js'

/*
 * The envelope of docs/protocol.md: one JSON object per text frame.
 *   client -> server  {"type": "say", "data": {...}, "id": "c1"}
 *   server -> client  {"type": "reply", "id": "c1", "data": ...}
 *                     {"type": "error", "id": "c1", "error": {"code", "message", "details"?}}
 *                     {"type": "said", "data": {...}}
 *                     {"type": "pong"}
 *                     {"type": "confirm", "data": {...}, "id": "s1"}   conn.emitWithAck()
 *   client -> server  {"type": "reply", "id": "s1", "data": ...}       its answer
 *                     {"type": "error", "id": "s1", "error": {"code", "message"}}
 */

/** A request id: chosen by the client, echoed in the one answer it asks for. */
export type RequestId = string | number

/** The types the protocol itself uses: the client's liveness ping, the server's pong and answers. */
export const EnvelopeType = { PING: 'ping', PONG: 'pong', REPLY: 'reply', ERROR: 'error' } as const

/** Types the protocol itself uses; a route cannot declare them. */
export const RESERVED_TYPES: ReadonlySet<string> = new Set(Object.values(EnvelopeType))

/**
 * Names no route event may take: the protocol's frame types (`error`,
 * `reply`, `pong`, `ping`), `session` (kept for a session-recovery frame),
 * and `state`, the client's own event for its connection state. A client
 * would misread an event of one of these names.
 */
export const RESERVED_EVENTS: ReadonlySet<string> = new Set(['error', 'reply', 'pong', 'ping', 'session', 'state'])

/** Longest request id the server echoes; a longer one is a validation error. */
export const MAX_ID_LENGTH = 128

/*
 * Encoders build the JSON text by hand around JSON.stringify(data) so that a
 * broadcast costs one stringify of the payload and nothing per recipient.
 */

/** Turns a value into JSON text; `undefined` where there is nothing to send. */
export type Stringify = (value: unknown) => string | undefined

/**
 * Encodes a server event `{"type", "data"}`, its data written by `stringify`
 * (a schema's serialiser, or JSON.stringify). Throws for data it cannot
 * carry (BigInt, cycles, or a schema mismatch).
 */
export function encodeEvent (type: string, data: unknown, stringify: Stringify = JSON.stringify): string {
  const json = data === undefined ? undefined : stringify(data)
  return json === undefined
    ? '{"type":' + JSON.stringify(type) + '}'
    : '{"type":' + JSON.stringify(type) + ',"data":' + json + '}'
}

/** Encodes the success answer to request `id`; a handler that returned nothing answers `data: null`. */
export function encodeReply (id: RequestId, data: unknown, stringify: Stringify = JSON.stringify): string {
  const json = data === undefined ? undefined : stringify(data)
  return '{"type":"reply","id":' + JSON.stringify(id) + ',"data":' + (json ?? 'null') + '}'
}

/** Encodes a failure answer; `id` is left out when the request carried none. */
export function encodeError (id: RequestId | undefined, code: string, message: string, details?: WireErrorDetail[]): string {
  const error = details === undefined ? { code, message } : { code, message, details }
  return id === undefined
    ? '{"type":"error","error":' + JSON.stringify(error) + '}'
    : '{"type":"error","id":' + JSON.stringify(id) + ',"error":' + JSON.stringify(error) + '}'
}

/** Encodes the answer to an application-level `{"type":"ping"}`. */
export function encodePong (id: RequestId | undefined): string {
  return id === undefined ? '{"type":"pong"}' : '{"type":"pong","id":' + JSON.stringify(id) + '}'
}
