import { encodeError, encodeReply, MAX_ID_LENGTH } from '../protocol/envelope.js'
import { WireErrorCode } from '../protocol/wire-errors.js'
import type { Outcome } from './listeners.js'

/*
 * The client's answers to events that ask for one (`conn.emitWithAck()` on
 * the server): `{"type":"reply","id","data"}`, or `{"type":"error","id","error"}`.
 */

/** Whether an event frame's `id` asks for an answer (the server sends "s1", "s2", ...). */
export function isAckId (id: unknown): id is string | number {
  return (typeof id === 'string' && id.length > 0 && id.length <= MAX_ID_LENGTH) || (typeof id === 'number' && Number.isFinite(id))
}

/**
 * The answer frame to event `type`: what its first listener returned or
 * resolved with (`null` for nothing), or the error it threw or rejected
 * with (its `code` when it has a string one, else INTERNAL), or
 * UNKNOWN_TYPE when no listener heard it.
 */
export function answerFrame (type: string, id: string | number, outcome: Outcome | undefined): string {
  if (outcome === undefined) return encodeError(id, WireErrorCode.UNKNOWN_TYPE, `No listener for '${type.slice(0, 64)}'`)
  if ('value' in outcome) {
    try {
      return encodeReply(id, outcome.value)
    } catch {
      return encodeError(id, WireErrorCode.INTERNAL, `The answer to '${type.slice(0, 64)}' cannot be sent as JSON`)
    }
  }
  const err = outcome.error as { code?: unknown, message?: unknown } | null | undefined
  const code = typeof err?.code === 'string' && err.code.length > 0 ? err.code : WireErrorCode.INTERNAL
  const message = typeof err?.message === 'string' ? err.message : String(err)
  return encodeError(id, code, message)
}
