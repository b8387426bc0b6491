// The hand-written room map the raw peers use: what an app on bare `ws` writes.
export class Rooms {
  #rooms = new Map()
  #ready = new Map()
  /** Called with a room's name when its first member joins (the Redis variant subscribes then). */
  onFirstJoin = null

  /** Joins; resolves once the room can receive (subscribed, with Redis). */
  join (room, socket) {
    let members = this.#rooms.get(room)
    if (members === undefined) {
      this.#rooms.set(room, members = new Set())
      this.#ready.set(room, Promise.resolve(this.onFirstJoin?.(room)))
    }
    members.add(socket)
    return this.#ready.get(room)
  }

  leaveAll (socket, joined) {
    for (const room of joined) {
      const members = this.#rooms.get(room)
      members?.delete(socket)
      if (members?.size === 0) {
        this.#rooms.delete(room)
        this.#ready.delete(room)
      }
    }
  }

  /** The naive broadcast: stringify once, `send` to each member. */
  broadcast (room, type, data) {
    this.send(room, JSON.stringify({ type, data }))
  }

  send (room, frame) {
    for (const socket of this.#rooms.get(room) ?? []) socket.send(frame)
  }
}

/**
 * One connection of a raw peer: untyped JSON echo and join, answered in the
 * same envelope fastify-realtime speaks, so one load generator drives all;
 * and `publish`, a tick from a client that `broadcast(room, type, data)`
 * sends to the room.
 */
export function serveEnvelope (socket, rooms, broadcast = (room, type, data) => rooms.broadcast(room, type, data)) {
  const joined = new Set()
  socket.on('message', (raw) => {
    const message = JSON.parse(raw)
    if (message.type === 'echo') {
      socket.send(JSON.stringify({ type: 'reply', id: message.id, data: message.data }))
    } else if (message.type === 'join') {
      joined.add(message.data.room)
      rooms.join(message.data.room, socket).then(() => socket.send(JSON.stringify({ type: 'reply', id: message.id, data: null })))
    } else if (message.type === 'publish') {
      const { room, seq, t, text } = message.data
      broadcast(room, 'tick', { seq, t, text })
    }
  })
  socket.on('close', () => rooms.leaveAll(socket, joined))
}
