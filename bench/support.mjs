// What the benchmark's processes share: ports, a redis-server of its own, statistics.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer, connect } from 'node:net'

/** About 100 bytes on the wire once enveloped: `{"type":"echo","id":1,"data":{"seq":1,"text":"..."}}`. */
export const TEXT = 'x'.repeat(48)

/** Milliseconds on a clock every process of this machine shares (epoch based, sub-millisecond). */
export function now () {
  return performance.timeOrigin + performance.now()
}

export async function freePort () {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address()
  server.close()
  await once(server, 'close')
  return port
}

/** A redis-server on a free port that keeps nothing on disk; `stop()` kills it. */
export async function startRedis () {
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' })
  const exited = once(child, 'exit')
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error('redis-server exited at start')
    const ok = await new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1', () => { socket.end(); resolve(true) })
      socket.on('error', () => resolve(false))
    })
    if (ok) {
      const url = `redis://127.0.0.1:${port}`
      // One connection for the bench's own questions, opened once: INFO costs the server little then.
      let client
      const ask = async () => {
        if (client === undefined) {
          const { Redis } = await import('ioredis')
          client = new Redis(url)
        }
        return client
      }
      return {
        url,
        /** A section of INFO, as an object of strings. */
        info: async (section) => info(await ask(), section),
        /** redis-server's CPU time so far (used_cpu_sys + used_cpu_user of INFO CPU), in microseconds. */
        cpu: async () => {
          const cpu = await info(await ask(), 'cpu')
          return Math.round((Number(cpu.used_cpu_sys) + Number(cpu.used_cpu_user)) * 1e6)
        },
        /** Runs a command on the bench's connection. */
        command: async (...args) => (await ask()).call(...args),
        stop: async () => {
          client?.disconnect()
          child.kill('SIGKILL')
          await exited
        }
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  child.kill('SIGKILL')
  throw new Error('redis-server did not start')
}

/** The value at quantile q (0..1) of an ascending array. */
export function quantile (sorted, q) {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}

export function median (values) {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor((sorted.length - 1) / 2)]
}

/** CPU time (user + system) in microseconds. */
export function cpuMicros () {
  const { user, system } = process.cpuUsage()
  return user + system
}

/** A section of a redis-server's INFO (through `client`), as an object of strings. */
async function info (client, section) {
  const text = await client.info(section)
  return Object.fromEntries(text.split('\r\n').filter((line) => line.includes(':')).map((line) => line.split(':')))
}
