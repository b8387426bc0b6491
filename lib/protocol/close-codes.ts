/**
 * Close codes the server sends. 1xxx are RFC 6455 codes; 4xxx are ours,
 * split in two halves: 4000-4399 mean "reconnecting may help", 4400-4999
 * mean "do not reconnect without changing something" (credentials, load).
 * A heartbeat give-up terminates the TCP connection without a close frame,
 * so that peer's client sees 1006.
 */
export const CloseCode = {
  /** Normal closure (`conn.close()` with no code). */
  NORMAL: 1000,
  /** The server is shutting down (`app.close()`). Reconnect elsewhere or later. */
  GOING_AWAY: 1001,
  /** Protocol error in a frame (sent by `ws`). */
  PROTOCOL_ERROR: 1002,
  /** Invalid UTF-8 in a text frame (sent by `ws`). */
  INVALID_PAYLOAD: 1007,
  /** Policy violation: too many frames queued before `onOpen` settled, or a run of `maxViolations` over the rate limit. */
  POLICY_VIOLATION: 1008,
  /** A frame larger than `maxPayload` (sent by `ws`). */
  MESSAGE_TOO_BIG: 1009,
  /** `onOpen` threw or rejected; the cause is logged. */
  INTERNAL_ERROR: 1011,
  /** What the client observes when the heartbeat gives up: no close frame, the TCP connection is dropped. */
  HEARTBEAT_TIMEOUT: 1006,
  /**
   * This instance missed events of the route's history (its Redis subscriber
   * was cut off): reconnect and resume (route option `recovery`) to get them.
   */
  RESUME_NEEDED: 4002,
  /** The client read too slowly: over `maxBufferedBytes` unread with `slowConsumer: 'close'`. It may reconnect. */
  SLOW_CONSUMER: 4001,
  /** The session ended (`conn.expireAt()` reached): reconnect only with fresh credentials. */
  SESSION_EXPIRED: 4401,
  /** Every connection of a user was closed by `disconnectUser()` (logout, ban). Do not reconnect with the same credentials. */
  DISCONNECTED: 4403,
  /** The session was resumed by a newer connection (route option `recovery`): this one is stale. Do not reconnect. */
  SESSION_RESUMED: 4409
} as const

export type CloseCode = typeof CloseCode[keyof typeof CloseCode]

/**
 * Close codes after which reconnecting as before cannot help: a deliberate
 * close (1000), a client that speaks the protocol wrong (1002, 1003, 1007),
 * a message that is too big to send again (1009), a missing extension
 * (1010). The 4400-4999 half of the application range belongs here too.
 */
const FINAL_CODES: ReadonlySet<number> = new Set([1000, 1002, 1003, 1007, 1009, 1010])

/**
 * The reconnect policy of docs/protocol.md, from the close code alone:
 * reconnect after 1001, 1006, 1008 (after a pause), 1011 and 4000-4399;
 * not after the final codes above nor 4400-4999.
 */
export function closeCodeAllowsReconnect (code: number): boolean {
  if (FINAL_CODES.has(code)) return false
  return !(code >= 4400 && code <= 4999)
}
