// Peer: raw `ws` 8 with a hand-written room map, the practical limit.
import { once } from 'node:events'
import { WebSocketServer } from 'ws'
import { Rooms, serveEnvelope } from './rooms.mjs'

export const protocol = 'envelope'

export async function start () {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false, clientTracking: false })
  await once(wss, 'listening')
  const rooms = new Rooms()
  wss.on('connection', (socket) => serveEnvelope(socket, rooms))
  return {
    port: wss.address().port,
    path: '/',
    broadcast: (room, type, data) => rooms.broadcast(room, type, data),
    close: () => new Promise((resolve) => wss.close(resolve))
  }
}
