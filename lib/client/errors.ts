import { WireErrorCode, type WireErrorDetail } from '../protocol/wire-errors.js'

/** Codes the client itself gives (the server's own codes, e.g. `VALIDATION_FAILED`, come through as they are). */
export const ClientErrorCode = {
  /** No answer within the request's timeout (time spent queued offline counts). */
  TIMEOUT: 'TIMEOUT',
  /** The connection dropped while the request was in flight: the server may or may not have handled it. */
  CONNECTION_LOST: 'CONNECTION_LOST',
  /** The client is closed for good (`close()`, a close code that forbids reconnecting, or `maxAttempts` used up). */
  CLOSED: 'CLOSED',
  /** The offline queue is full (`maxQueued`): the message was not kept. */
  QUEUE_FULL: 'QUEUE_FULL',
  /** `onReconnect` threw or rejected, or `token()` failed: reported on `error`, the client goes on. */
  HOOK_FAILED: 'HOOK_FAILED'
} as const

export type ClientErrorCode = typeof ClientErrorCode[keyof typeof ClientErrorCode]

/** One place in a message's `data` that failed the server's validation (the protocol's error detail). */
export type ErrorDetail = WireErrorDetail

/**
 * What a request rejects with, and what `on('error')` receives: the
 * server's `{"type":"error"}` answer (its `code`, `message`, `details`) or
 * one of the client's own `ClientErrorCode`s.
 */
export class RealtimeClientError extends Error {
  readonly code: string
  readonly details: ErrorDetail[] | undefined
  /** The message type of the request or send this error answers, where known. */
  readonly type: string | undefined

  constructor (code: string, message: string, details?: ErrorDetail[], type?: string) {
    super(message)
    this.name = 'RealtimeClientError'
    this.code = code
    this.details = details
    this.type = type
  }
}

/** The error of a `{"type":"error"}` frame, as the server sent it (INTERNAL where the frame is malformed). */
export function wireError (error: { code?: unknown, message?: unknown, details?: unknown } | undefined, type: string | undefined): RealtimeClientError {
  const code = typeof error?.code === 'string' ? error.code : WireErrorCode.INTERNAL
  const message = typeof error?.message === 'string' ? error.message : code
  const details = Array.isArray(error?.details) ? error.details as ErrorDetail[] : undefined
  return new RealtimeClientError(code, message, details, type)
}
