// The hand-written room map the raw peers use: what an app on bare `ws` writes.
export class Rooms {
  #rooms = new Map()

  join (room, socket) {
    let members = this.#rooms.get(room)
    if (members === undefined) this.#rooms.set(room, members = new Set())
    members.add(socket)
  }

  leaveAll (socket, joined) {
    for (const room of joined) {
      const members = this.#rooms.get(room)
      members?.delete(socket)
      if (members?.size === 0) this.#rooms.delete(room)
    }
  }

  /** The naive broadcast: stringify once, `send` to each member. */
  broadcast (room, type, data) {
    const frame = JSON.stringify({ type, data })
    for (const socket of this.#rooms.get(room) ?? []) socket.send(frame)
  }
}

/**
 * One connection of a raw peer: untyped JSON echo and join, answered in the
 * same envelope fastify-realtime speaks, so one load generator drives all.
 */
export function serveEnvelope (socket, rooms) {
  const joined = new Set()
  socket.on('message', (raw) => {
    const message = JSON.parse(raw)
    if (message.type === 'echo') {
      socket.send(JSON.stringify({ type: 'reply', id: message.id, data: message.data }))
    } else if (message.type === 'join') {
      rooms.join(message.data.room, socket)
      joined.add(message.data.room)
      socket.send(JSON.stringify({ type: 'reply', id: message.id, data: null }))
    }
  })
  socket.on('close', () => rooms.leaveAll(socket, joined))
}
