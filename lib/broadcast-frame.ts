/*
 * Broadcasts framed once. `ws` frames every `send()` on its own: a header
 * per socket, then cork, two writes, uncork. A broadcast to thousands of
 * sockets carries the same frame to each, so it is built once (header and
 * payload in one Buffer) and written to each socket's TCP stream as it is.
 * A stream written twice in one tick is corked until the end of the tick
 * (or 64 KiB): a burst of broadcasts leaves in two writes per socket, not
 * one per message.
 *
 * This reaches into `ws` (8.x: `Sender.frame`, `_socket`, `_sender`,
 * `_extensions`); where any of it is missing, or a socket is not in the
 * plain state (compression negotiated, a send queued inside ws), the frame
 * goes through `socket.send()` instead, in order.
 */
import { WebSocket } from 'ws'
import type { Duplex } from 'node:stream'

interface FrameOptions {
  fin: boolean
  rsv1: boolean
  opcode: number
  mask: boolean
  readOnly: boolean
}

interface SenderStatics {
  frame?: (data: Buffer, options: FrameOptions) => Buffer[]
}

/** What of a ws socket the fast path reads; none of it is public API, so all of it is checked. */
interface SocketInternals {
  _socket?: Duplex
  _sender?: { _state?: number }
  _extensions?: Record<string, unknown>
}

const TEXT = 0x1
/** The one extension ws negotiates: frames then need ws's own compression. */
const DEFLATE = 'permessage-deflate'
/** The Sender's idle state: nothing queued, nothing being compressed. */
const SENDER_IDLE = 0

const Sender = (WebSocket as unknown as { Sender?: SenderStatics }).Sender
const frameText = typeof Sender?.frame === 'function' ? Sender.frame.bind(Sender) : undefined

/** An unmasked, final text frame of `payload` (server to client), or undefined where ws cannot build one. */
export function textFrame (payload: Buffer): Buffer | undefined {
  if (frameText === undefined) return undefined
  const parts = frameText(payload, { fin: true, rsv1: false, opcode: TEXT, mask: false, readOnly: false })
  return parts.length === 1 ? parts[0] : Buffer.concat(parts)
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
  const internals = socket as unknown as SocketInternals
  const stream = internals._socket as Stream | undefined
  if (stream === undefined || internals._sender?._state !== SENDER_IDLE ||
    internals._extensions === undefined || internals._extensions[DEFLATE] !== undefined) return false
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
  return true
}
