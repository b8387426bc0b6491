/*
 * Broadcasts framed once. `ws` frames every `send()` on its own: a header
 * per socket, then cork, two writes, uncork. A broadcast to thousands of
 * sockets carries the same frame to each, so it is built once (header and
 * payload in one Buffer) and written to each socket's TCP stream as it is.
 * A stream written twice in one tick is corked until the end of the tick
 * (or 64 KiB): a burst of broadcasts leaves in two writes per socket, not
 * one per message. A frame to one connection (a reply, an emit) is built
 * the same way, in one Buffer and one write.
 *
 * This reaches into `ws` (8.x: `_socket`, `_sender`,
 * `_extensions`); where any of it is missing, or a socket is not in the
 * plain state (compression negotiated, a send queued inside ws), the frame
 * goes through `socket.send()` instead, in order.
 */
import type { WebSocket } from 'ws'
import type { Duplex } from 'node:stream'

/** What of a ws socket the fast path reads; none of it is public API, so all of it is checked. */
interface SocketInternals {
  _socket?: Duplex
  _sender?: { _state?: number }
  _extensions?: Record<string, unknown>
}

/** FIN set, opcode 1 (text): the first byte of every frame written here. */
const FIN_TEXT = 0x81
/** The one extension ws negotiates: frames then need ws's own compression. */
const DEFLATE = 'permessage-deflate'
/** The Sender's idle state: nothing queued, nothing being compressed. */
const SENDER_IDLE = 0

/** Bytes of the header of an unmasked frame of `length` payload bytes (RFC 6455, 5.2). */
function headerLength (length: number): number {
  return length < 126 ? 2 : length < 65_536 ? 4 : 10
}

/** Writes an unmasked, final text frame's header for `length` payload bytes at the start of `frame`. */
function writeHeader (frame: Buffer, length: number): void {
  frame[0] = FIN_TEXT
  if (length < 126) {
    frame[1] = length
  } else if (length < 65_536) {
    frame[1] = 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 127
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2)
    frame.writeUInt32BE(length >>> 0, 6)
  }
}

/**
 * An unmasked, final text frame (server to client) of `payload`, header and
 * payload in one Buffer; a string is encoded straight into it.
 */
export function textFrame (payload: string | Buffer): Buffer {
  const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length
  const offset = headerLength(length)
  const frame = Buffer.allocUnsafe(offset + length)
  writeHeader(frame, length)
  if (typeof payload === 'string') frame.write(payload, offset, length, 'utf8')
  else payload.copy(frame, offset)
  return frame
}

/** The payload of a frame built by `textFrame()`, without copying. */
export function payloadOf (frame: Buffer): Buffer {
  const length = frame[1]!
  return frame.subarray(length < 126 ? 2 : length === 126 ? 4 : 10)
}

/** Bytes a corked stream may hold before it is flushed early. */
const FLUSH_AT = 64 * 1024
/** The tick in which a stream was last written to, on the stream itself. */
const kWrittenIn = Symbol('fastify-realtime.writtenIn')

type Stream = Duplex & { [kWrittenIn]?: number }

/** Counts ticks in which frames were written; streams corked in this one are uncorked at its end. */
let tick = 0
let tickScheduled = false
const corked: Stream[] = []

function endTick (): void {
  tick++
  tickScheduled = false
  for (const stream of corked) stream.uncork()
  corked.length = 0
}

/** The socket's TCP stream when a frame may be written to it directly, else undefined. */
function directStream (socket: WebSocket): Stream | undefined {
  const internals = socket as unknown as SocketInternals
  const stream = internals._socket as Stream | undefined
  if (stream === undefined || internals._sender?._state !== SENDER_IDLE ||
    internals._extensions === undefined || internals._extensions[DEFLATE] !== undefined) return undefined
  return stream
}

/**
 * Writes a frame built by `textFrame()` straight to the socket's stream.
 * Returns false, having written nothing, when the socket is not in a state
 * that allows it; the caller then sends the payload with `socket.send()`.
 *
 * The first frame of a tick goes out at once (a steady stream of
 * broadcasts is not held back); from the second on the stream is corked
 * until the end of the tick, so a burst costs one system call per socket.
 */
export function writeFrame (socket: WebSocket, frame: Buffer): boolean {
  const stream = directStream(socket)
  if (stream === undefined) return false
  write(stream, frame)
  return true
}

/**
 * Sends `text` as one text frame the same way: header and payload in one
 * Buffer and one write, where `ws.send()` writes them apart (a `writev`
 * of two parts). Returns false, having written nothing, as writeFrame.
 */
export function writeText (socket: WebSocket, text: string): boolean {
  const stream = directStream(socket)
  if (stream === undefined) return false
  write(stream, textFrame(text))
  return true
}

function write (stream: Stream, frame: Buffer): void {
  if (!tickScheduled) {
    tickScheduled = true
    process.nextTick(endTick)
  }
  if (stream[kWrittenIn] !== tick) {
    stream[kWrittenIn] = tick
  } else if (stream.writableCorked === 0) {
    stream.cork()
    corked.push(stream)
  }
  stream.write(frame)
  // A large burst goes out now rather than piling up until the end of the
  // tick: the kernel's buffer takes it, and it does not count as unread.
  if (stream.writableCorked !== 0 && stream.writableLength >= FLUSH_AT) stream.uncork()
}
