// Peer: socket.io 4, websocket transport only; with REDIS_URL, over
// @socket.io/redis-adapter. Its idiomatic API: acks for replies, rooms.
import { createServer } from 'node:http'
import { once } from 'node:events'
import { Server } from 'socket.io'

export const protocol = 'socketio'

export async function start ({ redisUrl } = {}) {
  const http = createServer()
  const io = new Server(http, { transports: ['websocket'], serveClient: false, perMessageDeflate: false })
  let redisClients = []
  if (redisUrl !== undefined) {
    const { Redis } = await import('ioredis')
    const { createAdapter } = await import('@socket.io/redis-adapter')
    const pub = new Redis(redisUrl)
    const sub = pub.duplicate()
    redisClients = [pub, sub]
    io.adapter(createAdapter(pub, sub))
  }
  io.on('connection', (socket) => {
    socket.on('echo', (data, ack) => ack(data))
    socket.on('join', (room, ack) => {
      socket.join(room)
      ack()
    })
    socket.on('publish', ({ room, seq, t, text }) => { io.to(room).emit('tick', { seq, t, text }) })
  })
  http.listen(0, '127.0.0.1')
  await once(http, 'listening')
  return {
    port: http.address().port,
    path: '/socket.io/?EIO=4&transport=websocket',
    broadcast: (room, type, data) => { io.to(room).emit(type, data) },
    close: async () => {
      io.close()
      for (const client of redisClients) client.disconnect()
    }
  }
}
