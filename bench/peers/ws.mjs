// Peer: raw `ws` 8 with a hand-written room map, the practical limit. With
// REDIS_URL it is the plain cross-instance loop an app writes by hand: one
// ioredis channel per room, subscribed on the first join, the frame string
// published as is and sent to the local members on arrival.
import { once } from 'node:events'
import { WebSocketServer } from 'ws'
import { Rooms, serveEnvelope } from './rooms.mjs'

export const protocol = 'envelope'

export async function start ({ redisUrl } = {}) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false, clientTracking: false })
  await once(wss, 'listening')
  const rooms = new Rooms()
  let broadcast = (room, type, data) => rooms.broadcast(room, type, data)
  let redisClients = []
  if (redisUrl !== undefined) {
    const { Redis } = await import('ioredis')
    const pub = new Redis(redisUrl)
    const sub = pub.duplicate()
    redisClients = [pub, sub]
    sub.on('message', (channel, frame) => rooms.send(channel.slice('room:'.length), frame))
    rooms.onFirstJoin = (room) => sub.subscribe(`room:${room}`)
    broadcast = (room, type, data) => {
      const frame = JSON.stringify({ type, data })
      rooms.send(room, frame)
      pub.publish(`room:${room}`, frame)
    }
  }
  wss.on('connection', (socket) => serveEnvelope(socket, rooms, (room, type, data) => broadcast(room, type, data)))
  return {
    port: wss.address().port,
    path: '/',
    broadcast,
    close: async () => {
      await new Promise((resolve) => wss.close(resolve))
      for (const client of redisClients) client.disconnect()
    }
  }
}
