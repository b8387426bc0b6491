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
    if (ok) return { url: `redis://127.0.0.1:${port}`, stop: async () => { child.kill('SIGKILL'); await exited } }
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
