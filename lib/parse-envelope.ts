import sjson from 'secure-json-parse'
import { MAX_ID_LENGTH, type RequestId } from './protocol/envelope.js'
import { WireErrorCode, type WireErrorDetail } from './protocol/wire-errors.js'

/*
 * Inbound frames of the envelope protocol (docs/protocol.md), parsed on the
 * server only: the client never parses what a peer could forge this way.
 */

/** An inbound envelope that passed the envelope checks (its `data` is not checked yet). */
export interface InboundMessage {
  type: string
  data: unknown
  id: RequestId | undefined
  /** The `error` object of an `{"type":"error"}` frame: a client's failed answer to `emitWithAck()`. */
  error?: unknown
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
 * careless merge (`__proto__`, `constructor.prototype`) are refused outright
 * with BAD_JSON, so handlers never see them; the answer still carries the
 * envelope's `id` when it is a valid request id.
 */
export function parseEnvelope (text: string): InboundMessage | ProtocolFault {
  let value: unknown
  try {
    value = sjson.parse(text, null, PARSE_OPTIONS)
  } catch (err) {
    const forbidden = (err as Error).name === 'SyntaxError' && /prototype/.test((err as Error).message)
    if (!forbidden) return new ProtocolFault(WireErrorCode.BAD_JSON, 'Message is not valid JSON')
    return new ProtocolFault(WireErrorCode.BAD_JSON, 'Message contains a forbidden key', readId(text))
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
  if (type === 'error') return { type, data: undefined, id: id as RequestId | undefined, error: envelope.error }
  return { type, data: envelope.data, id: id as RequestId | undefined }
}

/**
 * The top-level `id` of a frame refused for a forbidden key, to answer it.
 * Plain JSON.parse makes `__proto__` an own property and pollutes nothing;
 * nothing but `id` is read from the result.
 */
function readId (text: string): RequestId | undefined {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, 'id')) return undefined
  const id = (value as { id?: unknown }).id
  return isRequestId(id) ? id : undefined
}

function isRequestId (id: unknown): id is RequestId {
  return (typeof id === 'string' && id.length <= MAX_ID_LENGTH) ||
    (typeof id === 'number' && Number.isFinite(id))
}
