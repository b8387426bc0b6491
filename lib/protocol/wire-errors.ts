/*
 * What a client sees when a message cannot be handled: an `error` envelope,
 * never a closed connection. The codes are part of the wire protocol
 * (docs/protocol.md) and never change meaning.
 */

/** Error codes of `{"type":"error"}` answers. */
export const WireErrorCode = {
  /** The frame is not JSON, or carries a forbidden key (`__proto__`, `constructor.prototype`). */
  BAD_JSON: 'BAD_JSON',
  /** A binary frame reached a route that speaks JSON text frames. */
  UNSUPPORTED_FRAME: 'UNSUPPORTED_FRAME',
  /** No handler is declared for this `type`. */
  UNKNOWN_TYPE: 'UNKNOWN_TYPE',
  /** The envelope or its `data` does not match the schema; `details` says where. */
  VALIDATION_FAILED: 'VALIDATION_FAILED',
  /** The handler threw or rejected; the cause is logged on the server, never sent. */
  INTERNAL: 'INTERNAL',
  /** The handler refused the request (thrown as `new RealtimeError('FORBIDDEN', ...)`), or `canJoin` refused a room. */
  FORBIDDEN: 'FORBIDDEN',
  /** Over the connection's (or the message type's) inbound budget; the message was not handled. */
  RATE_LIMITED: 'RATE_LIMITED',
  /** A join past `maxRoomsPerConnection`, or a room name longer than `maxRoomNameLength`. */
  ROOM_LIMIT: 'ROOM_LIMIT'
} as const

export type WireErrorCode = typeof WireErrorCode[keyof typeof WireErrorCode]

/** One place in the input that failed validation. */
export interface WireErrorDetail {
  /** JSON Pointer into the message's `data` (`/text`), or into the envelope (`/type`). */
  path: string
  message: string
}

/**
 * Throw this from a message handler to answer with your own code and message.
 * Any other error becomes `INTERNAL` and its message stays on the server.
 */
export class RealtimeError extends Error {
  readonly code: string
  readonly details: WireErrorDetail[] | undefined

  constructor (code: string, message: string, details?: WireErrorDetail[]) {
    super(message)
    this.name = 'RealtimeError'
    this.code = code
    this.details = details
  }
}
