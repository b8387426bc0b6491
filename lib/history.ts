import { randomBytes } from 'node:crypto'
import type { BroadcastPacket } from './broker.js'

/*
 * Session recovery (route option `recovery`). Every event a recovery-enabled
 * namespace broadcasts is appended to one ordered log, the namespace's
 * history, and reaches clients with its position in it: `"pos":"<epoch>-<seq>"`.
 * The epoch names one life of the log (a process, or a Redis that kept its
 * data); `seq` counts events from 1. A connection's session remembers the
 * rooms it was in, for `window` ms after it is lost; a client that comes back
 * with the session id and its last position gets, in order, every event of
 * the log after that position addressed to it, or is told it cannot.
 */

/** `recovery` route option, resolved. */
export interface HistoryOptions {
  /** Milliseconds a lost session can come back. */
  readonly window: number
  /** Events kept in the namespace's history (the oldest are dropped first). */
  readonly maxEvents: number
}

/** A broadcast that went through a history: `seq` is its place, `frame` carries its `pos`. */
export interface SequencedPacket extends BroadcastPacket {
  readonly seq: number
}

/** What a history knows of a live session: its connection. */
export interface SessionHolder {
  readonly id: string
  readonly userId: string | undefined
  readonly sessionId: string | undefined
  readonly rooms: ReadonlySet<string>
  close (code: number, reason: string): void
}

/** The answer to a resume. */
export type ResumeOutcome =
  | {
    readonly recovered: true
    /** The lost session's connection id: events that excepted it are not replayed. */
    readonly connectionId: string
    readonly rooms: readonly string[]
    /** Where the lost session began, carried over to the new one. */
    readonly start: string
    /** The events after the client's position, in order. */
    readonly entries: readonly SequencedPacket[]
  }
  | { readonly recovered: false, readonly reason: ResumeRefusal }

/** Why a resume gave a fresh session; logged at debug level, never sent. */
export type ResumeRefusal = 'unknown session' | 'another user' | 'another epoch' | 'position from the future' |
  'position before the session' | 'history trimmed' | 'malformed' | 'history unavailable'

/** One namespace's history and its resumable sessions. */
export interface History {
  /**
   * Gives the packet the next position and has it delivered, in log order,
   * on every instance (this one included). Rejects with
   * FST_RT_BROKER_UNAVAILABLE when the log cannot be reached; nothing is
   * delivered then.
   */
  append (packet: BroadcastPacket): Promise<void>
  /** A session began on this instance (fresh, or the continuation of a resumed one from `start`). */
  opened (session: SessionHolder, start?: string): void
  /** A live session's rooms changed. */
  changed (session: SessionHolder): void
  /** A session's connection closed in `rooms`: it can come back within the window. */
  closed (session: SessionHolder, rooms: ReadonlySet<string> | readonly string[]): void
  /** Takes a lost session over, if `userId` may, and reads what it missed after `position` (its start when undefined). */
  resume (sessionId: string, userId: string | undefined, position: string | undefined): Promise<ResumeOutcome>
  /** Writes what is pending and stops timers. */
  close (): Promise<void>
}

/** A new session id: 128 random bits. */
export function newSessionId (): string {
  return randomBytes(16).toString('base64url')
}

/** A new epoch: 64 random bits, in hex (a position is `<epoch>-<seq>`). */
export function newEpoch (): string {
  return randomBytes(8).toString('hex')
}

const SESSION_ID = /^[A-Za-z0-9_-]{22}$/
const POSITION = /^([0-9a-f]{16})-([1-9][0-9]{0,14}|0)$/

/** Whether a claimed session id has the shape of one this plugin hands out. */
export function isSessionId (value: string): boolean {
  return SESSION_ID.test(value)
}

/** Parses `<epoch>-<seq>`; undefined when malformed. */
export function parsePosition (value: string): { epoch: string, seq: number } | undefined {
  const match = POSITION.exec(value)
  return match === null ? undefined : { epoch: match[1]!, seq: Number(match[2]) }
}

/** A position. */
export function formatPosition (epoch: string, seq: number): string {
  return `${epoch}-${seq}`
}

/**
 * Where an event frame `{"type":"<name>",...}` (protocol/envelope.ts writes
 * every one) is cut to put its position after the type: just after the
 * type's closing quote. Frames keep starting with `{"type":`, which clients
 * that sniff the type before parsing rely on.
 */
export function typeEnd (frame: string): number {
  let quote = TYPE_START.length - 1
  for (;;) {
    quote = frame.indexOf('"', quote + 1)
    if (quote === -1) throw new TypeError('not an event frame')
    let backslashes = 0
    while (frame.charCodeAt(quote - 1 - backslashes) === 0x5c) backslashes++
    if (backslashes % 2 === 0) return quote + 1
  }
}

const TYPE_START = '{"type":"'

/** An event frame with its position after the type: `{"type":"update","pos":"...","data":...}`. */
export function withPosition (frame: string, position: string): string {
  const end = typeEnd(frame)
  return frame.slice(0, end) + ',"pos":"' + position + '"' + frame.slice(end)
}

/** The session frame, the first frame of a recovery-enabled route. */
export function encodeSession (id: string, recovered: boolean): string {
  return '{"type":"session","data":{"id":"' + id + '","recovered":' + recovered + '}}'
}

/** Whether a sequenced packet is for a session in `rooms` whose connections were `ids`. */
export function addressedTo (packet: BroadcastPacket, rooms: ReadonlySet<string>, ids: readonly string[]): boolean {
  for (const id of ids) if (packet.except.includes(id)) return false
  if (packet.rooms.length === 0) return true
  for (const room of packet.rooms) if (rooms.has(room)) return true
  return false
}
