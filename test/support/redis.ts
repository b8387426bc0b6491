import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { freePort } from './example-server.js'

/*
 * The suite's own redis-server processes, on free ports (never the shared
 * 6379), killed when the test process exits.
 */

const running = new Set<ChildProcess>()
function killAll (): void {
  for (const child of running) child.kill('SIGKILL')
}
process.on('exit', killAll)
// A test process ended by a signal (a tap timeout) runs no 'exit' handlers: take the servers down, then die of the same signal.
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.once(signal, () => {
    killAll()
    process.kill(process.pid, signal)
  })
}

export interface RedisServer {
  readonly port: number
  readonly url: string
  readonly pid: number
  kill (signal?: NodeJS.Signals): Promise<void>
  restart (): Promise<void>
  pause (): void
  resume (): void
  command (...args: string[]): Promise<unknown>
  stop (): Promise<void>
}

interface Teardown { teardown (fn: () => unknown): void }

const BASE_ARGS = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--enable-debug-command', 'local']

async function launch (port: number, args: string[]): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), ...BASE_ARGS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  running.add(child)
  child.once('exit', () => running.delete(child))
  let output = ''
  const keep = (chunk: Buffer): void => { output = (output + chunk.toString()).slice(-2000) }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  for (let attempt = 0; attempt < 200; attempt++) {
    if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}):\n${output}`)
    if (await answersPing(port)) return child
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  child.kill('SIGKILL')
  throw new Error(`redis-server on ${port} never answered PING:\n${output}`)
}

async function answersPing (port: number): Promise<boolean> {
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false })
  probe.on('error', () => {})
  try {
    await probe.connect()
    return await probe.ping() === 'PONG'
  } catch {
    return false
  } finally {
    probe.disconnect()
  }
}

async function exit (child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGCONT')
  child.kill(signal)
  await exited
}

/** Starts a redis-server on a free (or the given) port; resolves once it answers PING. */
export async function startRedis (options: { port?: number, args?: string[] } = {}): Promise<RedisServer> {
  const args = options.args ?? []
  let port = options.port ?? await freePort()
  let child: ChildProcess
  for (let attempt = 0; ; attempt++) {
    try {
      child = await launch(port, args)
      break
    } catch (err) {
      if (options.port !== undefined || attempt === 3) throw err
      port = await freePort()
    }
  }
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid () { return child.pid! },
    kill: async (signal = 'SIGKILL') => { await exit(child, signal) },
    restart: async () => {
      await exit(child, 'SIGKILL')
      for (let attempt = 0; ; attempt++) {
        try {
          child = await launch(port, args)
          return
        } catch (err) {
          if (attempt === 20) throw err
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
      }
    },
    pause: () => { child.kill('SIGSTOP') },
    resume: () => { child.kill('SIGCONT') },
    command: async (...command: string[]) => {
      const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 })
      client.on('error', () => {})
      try {
        return await client.call(command[0]!, ...command.slice(1))
      } finally {
        client.disconnect()
      }
    },
    stop: async () => { await exit(child, 'SIGKILL') }
  }
  return server
}

/** A redis-server stopped at teardown. */
export async function redisFor (t: Teardown): Promise<RedisServer> {
  const server = await startRedis()
  t.teardown(() => server.stop())
  return server
}

export interface RedisCluster {
  readonly nodes: Array<{ host: string, port: number }>
  stop (): Promise<void>
}

/** Three masters with cluster mode on, slots assigned, state ok. */
export async function startRedisCluster (): Promise<RedisCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'rt-cluster-'))
  const servers: RedisServer[] = []
  try {
    for (let i = 0; i < 3; i++) {
      const port = await freePort()
      servers.push(await startRedis({
        port,
        args: ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', '2000', '--dir', dir]
      }))
    }
    const create = spawn('redis-cli', ['--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', '0', '--cluster-yes'], { stdio: 'ignore' })
    const [code] = await once(create, 'exit')
    if (code !== 0) throw new Error(`redis-cli --cluster create exited with ${String(code)}`)
    for (const server of servers) {
      let ok = false
      for (let attempt = 0; attempt < 200 && !ok; attempt++) {
        ok = String(await server.command('CLUSTER', 'INFO')).includes('cluster_state:ok')
        if (!ok) await new Promise((resolve) => setTimeout(resolve, 50))
      }
      if (!ok) throw new Error(`cluster node ${server.port} never reached cluster_state:ok`)
    }
  } catch (err) {
    await Promise.all(servers.map((server) => server.stop()))
    await rm(dir, { recursive: true, force: true })
    throw err
  }
  return {
    nodes: servers.map((server) => ({ host: '127.0.0.1', port: server.port })),
    stop: async () => {
      await Promise.all(servers.map((server) => server.stop()))
      await rm(dir, { recursive: true, force: true })
    }
  }
}

/** A Redis Cluster stopped at teardown. */
export async function redisClusterFor (t: Teardown): Promise<RedisCluster> {
  const cluster = await startRedisCluster()
  t.teardown(() => cluster.stop())
  return cluster
}
