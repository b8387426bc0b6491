// Peer: fastify + @fastify/websocket with hand-written rooms.
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import { Rooms, serveEnvelope } from './rooms.mjs'

export const protocol = 'envelope'

export async function start () {
  const app = Fastify({ logger: false })
  await app.register(websocket, { options: { perMessageDeflate: false, clientTracking: false } })
  const rooms = new Rooms()
  app.get('/bench', { websocket: true }, (socket) => serveEnvelope(socket, rooms))
  await app.listen({ port: 0, host: '127.0.0.1' })
  return {
    port: app.server.address().port,
    path: '/bench',
    broadcast: (room, type, data) => rooms.broadcast(room, type, data),
    close: () => app.close()
  }
}
