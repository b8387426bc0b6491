import type { BroadcastPacket, UserCommand } from '../broker.js'

/*
 * What travels on the plugin's Redis channels. One message:
 *
 *   v1\n<header JSON>\n<frame>
 *
 * The header is small and the only part a receiver parses; the frame is the
 * exact text frame the sender encoded, forwarded to sockets as received.
 * Header fields: i = sending instance, k = kind ('b' broadcast, 'u' user
 * command), n = namespace, r = rooms, x = excepted connection ids; for user
 * commands u = user id, c = close code, m = close reason. A broadcast of a
 * recovery-enabled namespace also has p = its place in the namespace's
 * history (redis/history.ts writes it), and is delivered by every instance,
 * the sender's too.
 */

const VERSION = Buffer.from('v1\n')
const NEWLINE = 0x0a

/** Channel names under a prefix. Namespace paths start with '/' and hold no '#'. */
export class Channels {
  readonly #prefix: string
  readonly commands: string

  constructor (prefix: string) {
    this.#prefix = prefix
    this.commands = `${prefix}#!commands`
  }

  namespace (namespace: string): string {
    return `${this.#prefix}#${namespace}#`
  }

  room (namespace: string, room: string): string {
    return `${this.#prefix}#${namespace}#${room}#`
  }

  /** The channel a packet travels on: its room's when it names exactly one, else its namespace's. */
  of (packet: BroadcastPacket): string {
    return packet.rooms.length === 1 ? this.room(packet.namespace, packet.rooms[0]!) : this.namespace(packet.namespace)
  }
}

/*
 * Encoders return strings: what they join is JSON text (well-formed UTF-16,
 * JSON.stringify escapes lone surrogates), and ioredis writes a string
 * argument into its command as it is, where a Buffer argument makes it
 * assemble the command from parts.
 */

/** Encodes a broadcast once, for every instance. */
export function encodeBroadcast (instanceId: string, packet: BroadcastPacket): string {
  const header = JSON.stringify({ i: instanceId, k: 'b', n: packet.namespace, r: packet.rooms, x: packet.except })
  const frame = typeof packet.frame === 'string' ? packet.frame : packet.frame.toString()
  return 'v1\n' + header + '\n' + frame
}

/** The header of a broadcast a history appends, without its opening brace: the history's script puts `{"p":<seq>,` before it. */
export function historyHeader (instanceId: string, packet: BroadcastPacket): string {
  return JSON.stringify({ i: instanceId, k: 'b', n: packet.namespace, r: packet.rooms, x: packet.except }).slice(1)
}

/** Encodes a user command. */
export function encodeUserCommand (instanceId: string, command: UserCommand): string {
  return 'v1\n' + JSON.stringify({ i: instanceId, k: 'u', u: command.userId, c: command.code, m: command.reason }) + '\n'
}

/** A decoded message, or why it was refused. */
export type Decoded =
  | { kind: 'broadcast', instanceId: string, packet: BroadcastPacket }
  | { kind: 'user', instanceId: string, command: UserCommand }
  | { kind: 'invalid', reason: string }

/**
 * Decodes a message from a channel. Anything not written by this format is
 * refused with a reason, never thrown and never delivered.
 */
export function decodeMessage (message: Buffer): Decoded {
  if (message.length < VERSION.length || message.compare(VERSION, 0, VERSION.length, 0, VERSION.length) !== 0) {
    return { kind: 'invalid', reason: 'unknown format or version' }
  }
  const end = message.indexOf(NEWLINE, VERSION.length)
  if (end === -1) return { kind: 'invalid', reason: 'no header end' }
  let header: Record<string, unknown>
  try {
    header = JSON.parse(message.toString('utf8', VERSION.length, end))
  } catch {
    return { kind: 'invalid', reason: 'header is not JSON' }
  }
  if (header === null || typeof header !== 'object' || typeof header.i !== 'string') {
    return { kind: 'invalid', reason: 'header without instance id' }
  }
  if (header.k === 'u') {
    if (typeof header.u !== 'string' || !Number.isInteger(header.c) || typeof header.m !== 'string') {
      return { kind: 'invalid', reason: 'malformed user command' }
    }
    return { kind: 'user', instanceId: header.i, command: { kind: 'disconnect', userId: header.u, code: header.c as number, reason: header.m } }
  }
  if (header.k !== 'b' || typeof header.n !== 'string' || !isStringArray(header.r) || !isStringArray(header.x) ||
    (header.p !== undefined && !(Number.isSafeInteger(header.p) && (header.p as number) > 0))) {
    return { kind: 'invalid', reason: 'malformed broadcast header' }
  }
  const frame = message.subarray(end + 1)
  // A frame is a JSON object; a cheap check on its ends keeps foreign text away from clients.
  if (frame.length < 2 || frame[0] !== 0x7b || frame[frame.length - 1] !== 0x7d) {
    return { kind: 'invalid', reason: 'frame is not a JSON object' }
  }
  const packet: BroadcastPacket = header.p === undefined
    ? { namespace: header.n, rooms: header.r, except: header.x, frame }
    : { namespace: header.n, rooms: header.r, except: header.x, frame, seq: header.p as number }
  return { kind: 'broadcast', instanceId: header.i, packet }
}

function isStringArray (value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string')
}
