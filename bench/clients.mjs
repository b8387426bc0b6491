// The load generator's clients. Both speak over a bare `ws` socket, so the
// client side costs the same whatever the peer: the envelope of
// docs/protocol.md (ws, @fastify/websocket, fastify-realtime), or
// socket.io's own framing (engine.io 4 packets: `40` connect, `42[...]`
// event, `42<id>[...]` emit with ack, `43<id>[...]` ack, `2`/`3` ping/pong).
import WebSocket from 'ws'

/** Opens a client of `protocol`; resolves once it can send. */
export async function open (url, protocol) {
  const ws = new WebSocket(url, { perMessageDeflate: false })
  const client = protocol === 'socketio' ? new SocketIoClient(ws) : new EnvelopeClient(ws)
  await client.ready
  return client
}

class EnvelopeClient {
  #nextId = 1
  #pending = new Map()

  constructor (ws) {
    this.ws = ws
    /** Called with every frame that is not an answer. */
    this.onEvent = null
    this.ready = new Promise((resolve, reject) => {
      ws.once('open', resolve)
      ws.once('error', reject)
    })
    ws.on('message', (data) => {
      // Answers start with {"type":"reply" or {"type":"error"; anything else is an event.
      if (data[9] === 0x72 || data[9] === 0x65) {
        const message = JSON.parse(data)
        const pending = this.#pending.get(message.id)
        this.#pending.delete(message.id)
        pending?.(message.data)
      } else {
        this.onEvent?.(data)
      }
    })
  }

  request (type, data) {
    const id = this.#nextId++
    this.ws.send(JSON.stringify({ type, id, data }))
    return new Promise((resolve) => this.#pending.set(id, resolve))
  }

  join (room) {
    return this.request('join', { room })
  }

  /** The `data` of an event frame. */
  static eventData (frame) {
    return JSON.parse(frame).data
  }

  close () {
    this.ws.terminate()
  }
}

class SocketIoClient {
  #nextId = 0
  #pending = new Map()

  constructor (ws) {
    this.ws = ws
    this.onEvent = null
    this.ready = new Promise((resolve, reject) => {
      ws.once('error', reject)
      ws.on('message', (raw) => {
        const text = raw.toString()
        if (text[0] === '2') {
          ws.send('3')
        } else if (text.startsWith('0')) {
          ws.send('40')
        } else if (text.startsWith('40')) {
          resolve()
        } else if (text.startsWith('43')) {
          const bracket = text.indexOf('[')
          const id = Number(text.slice(2, bracket))
          const pending = this.#pending.get(id)
          this.#pending.delete(id)
          pending?.(JSON.parse(text.slice(bracket))[0])
        } else if (text.startsWith('42')) {
          this.onEvent?.(text)
        }
      })
    })
  }

  request (type, data) {
    const id = this.#nextId++
    this.ws.send(`42${id}${JSON.stringify(data === undefined ? [type] : [type, data])}`)
    return new Promise((resolve) => this.#pending.set(id, resolve))
  }

  join (room) {
    return this.request('join', room)
  }

  static eventData (frame) {
    return JSON.parse(frame.slice(2))[1]
  }

  close () {
    this.ws.terminate()
  }
}

export function eventData (protocol, frame) {
  return protocol === 'socketio' ? SocketIoClient.eventData(frame) : EnvelopeClient.eventData(frame)
}
