import sjson from 'secure-json-parse'
import { WireErrorCode, type WireErrorDetail } from './wire-errors.js'

/*
 * The envelope of docs/protocol.md: one JSON object per text frame.
 *   client -> server  {"type": "say", "data": {...}, "id": "c1"}
 *   server -> client  {"type": "reply", "id": "c1", "data": ...}
 *                     {"type": "error", "id": "c1", "error": {"code", "message", "details"?}}
 *                     {"type": "said", "data": {...}}
 *                     {"type": "pong"}
 */

/** A request id: chosen by the client, echoed in the one answer it asks for. */
export type RequestId = string | number

/** Types the protocol itself uses; a route cannot declare them. */
export const RESERVED_TYPES: ReadonlySet<string> = new Set(['ping', 'pong', 'reply', 'error'])

/** Longest request id the server echoes; a longer one is a validation error. */
export const MAX_ID_LENGTH = 128

/** An inbound envelope that passed the envelope checks (its `data` is not checked yet). */
export interface InboundMessage {
  type: string
  data: unknown
  id: RequestId | undefined
}

/** Why an inbound frame could not become an `InboundMessage`. */
export class ProtocolFault {
  constructor (
    readonly code: WireErrorCode,
    readonly message: string,
    readonly id: RequestId | undefined = undefined,
    readonly details: WireErrorDetail[] | undefined = undefined
  ) {}
}

const PARSE_OPTIONS = { protoAction: 'error', constructorAction: 'error' } as const

/**
 * Parses one text frame. Keys that could reach `Object.prototype` through a
 * careless merge (`__proto__`, `constructor.prototype`) are refused outright,
 * so handlers never see them.
 */
export function parseEnvelope (text: string): InboundMessage | ProtocolFault {
  let value: unknown
  try {
    value = sjson.parse(text, null, PARSE_OPTIONS)
  } catch (err) {
    const forbidden = (err as Error).name === 'SyntaxError' && /prototype/.test((err as Error).message)
    return new ProtocolFault(WireErrorCode.BAD_JSON,
      forbidden ? 'Message contains a forbidden key' : 'Message is not valid JSON')
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return new ProtocolFault(WireErrorCode.VALIDATION_FAILED, 'Message must be a JSON object',
      undefined, [{ path: '', message: 'must be object' }])
  }
  const envelope = value as Record<string, unknown>
  const id = envelope.id
  if (id !== undefined && !isRequestId(id)) {
    return new ProtocolFault(WireErrorCode.VALIDATION_FAILED, 'Invalid message id', undefined,
      [{ path: '/id', message: `must be a string of at most ${MAX_ID_LENGTH} characters or a finite number` }])
  }
  const type = envelope.type
  if (typeof type !== 'string' || type.length === 0) {
    return new ProtocolFault(WireErrorCode.VALIDATION_FAILED, 'Message type must be a non-empty string', id as RequestId | undefined,
      [{ path: '/type', message: 'must be a non-empty string' }])
  }
  return { type, data: envelope.data, id: id as RequestId | undefined }
}

function isRequestId (id: unknown): id is RequestId {
  return (typeof id === 'string' && id.length <= MAX_ID_LENGTH) ||
    (typeof id === 'number' && Number.isFinite(id))
}

/*
 * Encoders build the JSON text by hand around JSON.stringify(data) so that a
 * broadcast costs one stringify of the payload and nothing per recipient.
 */

/** Encodes a server event `{"type", "data"}`. Throws a TypeError for data JSON cannot carry (BigInt, cycles). */
export function encodeEvent (type: string, data: unknown): string {
  const json = JSON.stringify(data)
  return json === undefined
    ? '{"type":' + JSON.stringify(type) + '}'
    : '{"type":' + JSON.stringify(type) + ',"data":' + json + '}'
}

/** Encodes the success answer to request `id`; a handler that returned nothing answers `data: null`. */
export function encodeReply (id: RequestId, data: unknown): string {
  return '{"type":"reply","id":' + JSON.stringify(id) + ',"data":' + (JSON.stringify(data) ?? 'null') + '}'
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
