// The load generator's clients. The light one is a minimal WebSocket client
// on a bare TCP socket, so that the generator costs little per message and
// the figures are the servers'; the `ws` one is a real `ws` 8 client, what
// a Node user runs, for the view where the client's cost counts too. Every
// peer gets the same clients; they speak either the envelope of
// docs/protocol.md (ws, @fastify/websocket, fastify-realtime) or
// socket.io's own packets (engine.io 4: `0{...}` open, `40` connect,
// `42[...]` event, `42<id>[...]` emit with ack, `43<id>[...]` ack, `2`/`3`
// ping/pong), written by hand on both (socket.io-client is not installed).
// The light client masks frames with a zero key, which RFC 6455 allows and
// leaves the payload as it is.
import { connect } from 'node:net'
import { once } from 'node:events'
import WebSocket from 'ws'

const OPCODE_TEXT = 0x1
const OPCODE_CLOSE = 0x8
const OPCODE_PING = 0x9
const OPCODE_PONG = 0xa
const HEADER_END = Buffer.from('\r\n\r\n')

/** Opens a client of `protocol` on a ws:// URL, light (bare TCP) or `ws`; resolves once it can send. */
export async function open (url, protocol, kind = 'light') {
  const client = kind === 'ws' ? openWs(url, protocol) : await openLight(url, protocol)
  await client.ready
  return client
}

async function openLight (url, protocol) {
  const { hostname, port, pathname, search } = new URL(url)
  const socket = connect(Number(port), hostname)
  socket.setNoDelay(true)
  await once(socket, 'connect')
  socket.write(`GET ${pathname}${search} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\n` +
    'Connection: Upgrade\r\nSec-WebSocket-Key: YmVuY2htYXJrLWNsaWVudA==\r\nSec-WebSocket-Version: 13\r\n\r\n')
  return new LightClient(socket, protocol)
}

function openWs (url, protocol) {
  return new WsClient(new WebSocket(url, { perMessageDeflate: false }), protocol)
}

/**
 * The protocol side of a client, whatever carries its frames: requests and
 * their answers, emits, and every other text frame handed to `onEvent`.
 */
class Client {
  #protocol
  #nextId = 1
  #pending = new Map()
  #opened
  #failed

  constructor (protocol) {
    this.#protocol = protocol
    /** Called with the payload (a Buffer) of every frame that is not an answer. */
    this.onEvent = null
    this.ready = new Promise((resolve, reject) => {
      this.#opened = resolve
      this.#failed = reject
    })
  }

  /** The transport's upgrade is done (socket.io still has to connect to its namespace). */
  upgraded () {
    if (this.#protocol !== 'socketio') this.#opened()
  }

  /** The transport failed; rejects `ready` unless it has settled. */
  failed (err) {
    this.#failed(err)
  }

  /** The payload (a Buffer) of a text frame. */
  receive (payload) {
    if (this.#protocol === 'socketio') return this.#socketIo(payload)
    // Answers start with {"type":"reply" or {"type":"error"; anything else is an event.
    if (payload[9] === 0x72 || payload[9] === 0x65) {
      const message = JSON.parse(payload)
      this.#answer(message.id, message.data)
    } else {
      this.onEvent?.(payload)
    }
  }

  #socketIo (payload) {
    const kind = payload[0]
    if (kind === 0x32) return this.send('3') // engine.io ping
    if (kind === 0x30) return this.send('40') // open: connect to the main namespace
    if (payload[1] === 0x30) return this.#opened() // `40{...}`: connected
    if (payload[1] === 0x33) { // `43<id>[...]`: an ack
      const text = payload.toString()
      const bracket = text.indexOf('[')
      return this.#answer(Number(text.slice(2, bracket)), JSON.parse(text.slice(bracket))[0])
    }
    if (payload[1] === 0x32) this.onEvent?.(payload) // `42[...]`: an event
  }

  #answer (id, data) {
    const pending = this.#pending.get(id)
    this.#pending.delete(id)
    pending?.(data)
  }

  request (type, data) {
    const id = this.#nextId++
    if (this.#protocol === 'socketio') this.send(`42${id}${JSON.stringify(data === undefined ? [type] : [type, data])}`)
    else this.send(JSON.stringify({ type, id, data }))
    return new Promise((resolve) => this.#pending.set(id, resolve))
  }

  /** A message that asks for no answer. */
  emit (type, data) {
    if (this.#protocol === 'socketio') this.send(`42${JSON.stringify([type, data])}`)
    else this.send(JSON.stringify({ type, data }))
  }

  join (room) {
    return this.request('join', this.#protocol === 'socketio' ? room : { room })
  }
}

/** A real `ws` client: ws frames, answers pings and closes as a user's client does. */
class WsClient extends Client {
  #socket

  constructor (socket, protocol) {
    super(protocol)
    this.#socket = socket
    socket.on('open', () => this.upgraded())
    socket.on('message', (data, isBinary) => { if (!isBinary) this.receive(data) })
    socket.on('error', (err) => this.failed(err))
    socket.on('close', () => this.failed(new Error('closed before open')))
  }

  send (text) {
    this.#socket.send(text)
  }

  close () {
    this.#socket.terminate()
  }
}

/** The light client: RFC 6455 framing by hand on a bare TCP socket. */
class LightClient extends Client {
  #socket
  #buffer = Buffer.alloc(0)
  #upgraded = false

  constructor (socket, protocol) {
    super(protocol)
    this.#socket = socket
    socket.once('error', (err) => this.failed(err))
    socket.once('close', () => this.failed(new Error('closed before open')))
    socket.on('error', () => {})
    socket.on('data', (chunk) => this.#read(chunk))
  }

  #read (chunk) {
    let buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk])
    if (!this.#upgraded) {
      const end = buffer.indexOf(HEADER_END)
      if (end === -1) { this.#buffer = buffer; return }
      if (!buffer.subarray(0, 12).toString().endsWith('101')) throw new Error(`upgrade refused: ${buffer.subarray(0, 40)}`)
      this.#upgraded = true
      buffer = buffer.subarray(end + 4)
      this.upgraded()
    }
    let offset = 0
    while (buffer.length - offset >= 2) {
      const opcode = buffer[offset] & 0x0f
      let length = buffer[offset + 1] & 0x7f
      let start = offset + 2
      if (length === 126) {
        if (buffer.length - offset < 4) break
        length = buffer.readUInt16BE(offset + 2)
        start += 2
      } else if (length === 127) {
        if (buffer.length - offset < 10) break
        length = Number(buffer.readBigUInt64BE(offset + 2))
        start += 8
      }
      if (buffer.length < start + length) break
      this.#frame(opcode, buffer.subarray(start, start + length))
      offset = start + length
    }
    this.#buffer = offset === buffer.length ? Buffer.alloc(0) : buffer.subarray(offset)
  }

  #frame (opcode, payload) {
    if (opcode === OPCODE_PING) return this.#write(OPCODE_PONG, payload)
    if (opcode === OPCODE_CLOSE) return this.#socket.destroy()
    if (opcode === OPCODE_TEXT) this.receive(payload)
  }

  #write (opcode, payload) {
    const length = payload.length
    const header = Buffer.alloc(length < 126 ? 6 : 8)
    header[0] = 0x80 | opcode
    if (length < 126) {
      header[1] = 0x80 | length
    } else {
      header[1] = 0x80 | 126
      header.writeUInt16BE(length, 2)
    }
    this.#socket.write(Buffer.concat([header, payload]))
  }

  send (text) {
    this.#write(OPCODE_TEXT, Buffer.from(text))
  }

  close () {
    this.#socket.destroy()
  }
}

/** The `data` of an event frame's payload. */
export function eventData (protocol, payload) {
  return protocol === 'socketio' ? JSON.parse(payload.subarray(2))[1] : JSON.parse(payload).data
}
