// One server under test, in its own process: `node --expose-gc bench/server.mjs <peer> [redis-url]`.
// Answers the orchestrator over IPC: its CPU time, its memory after a full
// GC, and broadcasts to a room (steady or back to back), stamped with the
// shared clock so the load generator can measure latency.
import { cpuMicros, now, TEXT } from './support.mjs'

const [peerName, redisUrl] = process.argv.slice(2)
const peer = await import(`./peers/${peerName}.mjs`)
const server = await peer.start({ redisUrl })

const commands = {
  cpu: () => ({ cpu: cpuMicros() }),
  mem: async () => {
    for (let i = 0; i < 3; i++) {
      globalThis.gc()
      await new Promise((resolve) => setImmediate(resolve))
    }
    const { rss, heapUsed, external, arrayBuffers } = process.memoryUsage()
    return { rss, heapUsed, external, arrayBuffers }
  },
  // `rate` broadcasts per second, or all at once when 0.
  fanout: async ({ room, count, rate }) => {
    if (rate === 0) {
      for (let seq = 0; seq < count; seq++) server.broadcast(room, 'tick', { seq, t: now(), text: TEXT })
      return { sent: count }
    }
    const start = now()
    for (let seq = 0; seq < count; seq++) {
      const due = start + seq * 1000 / rate
      const wait = due - now()
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
      server.broadcast(room, 'tick', { seq, t: now(), text: TEXT })
    }
    return { sent: count }
  },
  // `count` broadcasts at `rate` per second, round-robin over `rooms` (bench/capacity.mjs).
  spray: async ({ rooms, count, rate }) => {
    const start = now()
    for (let seq = 0; seq < count; seq++) {
      const wait = start + seq * 1000 / rate - now()
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
      server.broadcast(rooms[seq % rooms.length], 'tick', { seq, t: now(), text: TEXT })
    }
    return { sent: count }
  },
  close: async () => {
    await server.close()
    setImmediate(() => process.exit(0))
    return {}
  }
}

process.on('message', async ({ rid, cmd, ...args }) => {
  process.send({ rid, ...await commands[cmd](args) })
})
process.send({ ready: true, port: server.port, path: server.path, protocol: peer.protocol })
