import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { pollUntil } from '../helper.js'

/*
 * The suite's own redis-server processes on free local ports (never the
 * shared 6379), none of which outlives the test process.
 */

const HOST = '127.0.0.1'
const BASE_ARGS = ['--bind', HOST, '--save', '', '--appendonly', 'no', '--enable-debug-command', 'local']
const TAIL_CHARS = 4000
const READY_ATTEMPTS = 250 // x READY_POLL_MS: ~5 s for a server to answer PING
const READY_POLL_MS = 20
const BUSY_ATTEMPTS = 40 // x BUSY_POLL_MS: ~2 s for a given port to come free
const BUSY_POLL_MS = 50
const FREE_PORT_ATTEMPTS = 5
// A cluster node also listens on port + 10000, so Redis refuses ports above this one.
const MAX_CLUSTER_PORT = 55535

// setpriv execs redis-server (same pid) with a parent-death signal: the kernel kills it even
// when the test process dies of SIGKILL, as tap ends a timed-out one, which no handler survives.
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((path) => existsSync(path))
const PREFIX = SETPRIV === undefined ? [] : [SETPRIV, '--pdeathsig', 'KILL']

const running = new Set<ChildProcess>()
const tempDirs = new Set<string>()
function cleanUpSync (): void {
  for (const child of running) child.kill('SIGKILL')
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
}
process.on('exit', cleanUpSync) // synchronous: an 'exit' handler cannot wait
// A process ended by a signal (SIGALRM: a tap timeout) runs no 'exit' handlers: clean up, then die of the same signal.
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGALRM'] as const) {
  process.once(signal, () => {
    cleanUpSync()
    process.kill(process.pid, signal)
  })
}

/** One redis-server process owned by the test process. */
export interface RedisServer {
  readonly port: number
  /** `redis://127.0.0.1:<port>` */
  readonly url: string
  /** pid of the current process; changes on restart(). */
  readonly pid: number
  /** Sends a signal that ends the process (SIGCONT first, so a paused one obeys) and waits for the exit. @default 'SIGKILL' */
  kill (signal?: NodeJS.Signals): Promise<void>
  /** Kills the process if alive, starts a new one on the same port, waits for PING. No data survives. */
  restart (): Promise<void>
  /** SIGSTOP: connections stay open, nothing is answered. Resolves once the kernel reports the process stopped. */
  pause (): Promise<void>
  /** SIGCONT: commands held while paused are answered. */
  resume (): Promise<void>
  /** Runs one command over a short-lived connection, closed (server side too) before this resolves. */
  command (...args: string[]): Promise<unknown>
  /** Kills and waits; idempotent. */
  stop (): Promise<void>
}

/** Options of startRedis(). */
export interface RedisOptions {
  /** @default a free port */
  port?: number
  /** Extra redis-server arguments. @default [] */
  args?: string[]
}

/** A 3-master Redis Cluster, every slot assigned and cluster_state:ok. */
export interface RedisCluster {
  readonly nodes: Array<{ host: string, port: number }>
  /** Kills every node and removes the config dir; idempotent. */
  stop (): Promise<void>
}

/** Anything with tap's teardown (a tap Test). */
export interface Teardown { teardown (fn: () => unknown): void }

/** A child killed with this process, and the last TAIL_CHARS it printed. */
interface Owned {
  child: ChildProcess
  /** 'exit', or 'error' alone (the spawn failed): the process is gone. */
  exited: Promise<void>
  /** Also its output read to the end. */
  closed: Promise<void>
  done (): boolean
  tail (): string
}

function spawnOwned (command: string[], cwd: string): Owned {
  const child = spawn(command[0]!, command.slice(1), { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  running.add(child)
  let output = ''
  const keep = (chunk: Buffer | string): void => { output = (output + String(chunk)).slice(-TAIL_CHARS) }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  let done = false
  const gone = (event: 'exit' | 'close') => new Promise<void>((resolve) => {
    child.once(event, () => resolve())
    child.once('error', (err) => { if (event === 'exit') keep(`\n${err.message}`); resolve() })
  })
  const exited = gone('exit').then(() => { done = true; running.delete(child) })
  return { child, exited, closed: gone('close'), done: () => done, tail: () => output }
}

async function ended (proc: Owned, signal: NodeJS.Signals): Promise<void> {
  if (proc.done()) return
  proc.child.kill('SIGCONT')
  proc.child.kill(signal)
  await proc.exited
}

/**
 * The pid of whatever answers PING on the port, if anything does before
 * `cancel`. QUIT and waiting for the close: the server has dropped this probe
 * before a caller counts clients.
 */
async function answeringPid (port: number, cancel: Promise<void>): Promise<number | undefined> {
  const socket = connect(port, HOST)
  socket.setTimeout(1000, () => socket.destroy())
  // Whatever holds a busy port may accept and never answer: do not wait for it once our server has exited.
  void cancel.then(() => socket.destroy())
  socket.on('error', () => {})
  let reply = ''
  socket.setEncoding('utf8').on('data', (chunk: string) => { reply += chunk })
  socket.write('PING\r\nINFO server\r\nQUIT\r\n')
  // Not events.once(): it rejects on the 'error' (ECONNREFUSED) that precedes 'close'.
  await new Promise((resolve) => socket.once('close', resolve))
  const pid = reply.startsWith('+PONG\r\n') ? /\r\nprocess_id:(\d+)\r\n/.exec(reply)?.[1] : undefined
  return pid === undefined ? undefined : Number(pid)
}

class StartError extends Error {
  constructor (message: string, readonly busy: boolean) { super(message) }
}

/** Spawns, then waits until this very process answers PING: another server may hold the port it failed to bind. */
async function launch (port: number, args: string[]): Promise<Owned> {
  // cwd: a stray SAVE or DEBUG RELOAD must not write into the repo.
  const proc = spawnOwned([...PREFIX, 'redis-server', '--port', String(port), ...BASE_ARGS, ...args], tmpdir())
  for (let attempt = 0; attempt < READY_ATTEMPTS; attempt++) {
    if (!proc.done() && await answeringPid(port, proc.exited) === proc.child.pid) return proc
    if (proc.done()) {
      // 'exit' can come before the last output: the busy-port line is in it.
      await Promise.race([proc.closed, delay(1000)])
      throw new StartError(`redis-server on port ${port} exited (${proc.child.signalCode ?? proc.child.exitCode}) before answering PING:\n${proc.tail()}`,
        proc.tail().includes('Address already in use'))
    }
    await Promise.race([delay(READY_POLL_MS), proc.exited])
  }
  await ended(proc, 'SIGKILL')
  throw new StartError(`redis-server on port ${port} never answered PING:\n${proc.tail()}`, false)
}

/** A port nothing listens on right now, at most `max`; it may be taken before use, so callers retry. */
async function freePort (max = 65535): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const server = createServer().listen(0, HOST)
    await once(server, 'listening')
    const { port } = server.address() as { port: number }
    server.close()
    await once(server, 'close')
    if (port <= max) return port
  }
  throw new Error(`no free port at or below ${max}`)
}

type PortChoice = { given: number } | { pick: () => Promise<number> }

/** launch(), retrying a busy port: a given one after a short wait, a picked one by picking again. */
async function launchOnFreePort (choice: PortChoice, argsFor: (port: number) => string[]): Promise<{ port: number, proc: Owned }> {
  for (let attempt = 1; ; attempt++) {
    const port = 'given' in choice ? choice.given : await choice.pick()
    try {
      return { port, proc: await launch(port, argsFor(port)) }
    } catch (err) {
      if (!(err instanceof StartError) || !err.busy || attempt >= ('given' in choice ? BUSY_ATTEMPTS : FREE_PORT_ATTEMPTS)) throw err
      if ('given' in choice) await delay(BUSY_POLL_MS)
    }
  }
}

/** ioredis rather than redis-cli: typed replies (numbers, arrays, null), no process per call. */
async function runCommand (port: number, [name, ...args]: string[]): Promise<unknown> {
  if (name === undefined) throw new TypeError('command() needs a command name')
  const client = new Redis({ host: HOST, port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
  client.on('error', () => {}) // the rejection carries it
  let reply: unknown
  try {
    await client.connect()
    reply = await client.call(name, ...args)
  } catch (err) {
    client.disconnect()
    throw err
  }
  if (client.status !== 'end') { // a command may have closed it (CLIENT KILL, SHUTDOWN)
    const closed = once(client, 'end')
    await client.quit().catch(() => client.disconnect())
    await closed
  }
  return reply
}

/**
 * Signals land asynchronously: waits until /proc shows the process stopped
 * (or running), so a command sent after pause() is surely held. Without
 * /proc, resolves at once.
 */
async function stateReached (proc: Owned, stopped: boolean): Promise<void> {
  for (let attempt = 0; attempt < 200 && !proc.done(); attempt++) {
    let stat: string
    try {
      stat = readFileSync(`/proc/${proc.child.pid}/stat`, 'utf8')
    } catch {
      return
    }
    // "pid (comm) S ...": comm may hold spaces and parens; the state follows the last ')'.
    if ((stat[stat.lastIndexOf(')') + 2] === 'T') === stopped) return
    await delay(1)
  }
  if (!proc.done()) throw new Error(`redis-server ${proc.child.pid} did not ${stopped ? 'stop' : 'continue'}`)
}

async function serverOn (choice: PortChoice, argsFor: (port: number) => string[]): Promise<RedisServer> {
  const launched = await launchOnFreePort(choice, argsFor)
  const { port } = launched
  let proc = launched.proc
  return {
    port,
    url: `redis://${HOST}:${port}`,
    get pid () { return proc.child.pid! },
    kill: (signal = 'SIGKILL') => ended(proc, signal),
    async restart () {
      await ended(proc, 'SIGKILL')
      proc = (await launchOnFreePort({ given: port }, argsFor)).proc
    },
    async pause () {
      proc.child.kill('SIGSTOP')
      await stateReached(proc, true)
    },
    async resume () {
      proc.child.kill('SIGCONT')
      await stateReached(proc, false)
    },
    command: (...args) => runCommand(port, args),
    stop: () => ended(proc, 'SIGKILL')
  }
}

/**
 * Starts `redis-server --port <port> --bind 127.0.0.1 --save '' --appendonly no
 * --enable-debug-command local ...args` on a free port (or the given one);
 * resolves once it answers PING.
 */
export async function startRedis (options: RedisOptions = {}): Promise<RedisServer> {
  const args = options.args ?? []
  return serverOn(options.port === undefined ? { pick: () => freePort() } : { given: options.port }, () => args)
}

/** startRedis(), stopped at teardown. */
export async function redisFor (t: Teardown, options: RedisOptions = {}): Promise<RedisServer> {
  const server = await startRedis(options)
  t.teardown(() => server.stop())
  return server
}

async function createCluster (ports: number[]): Promise<void> {
  const cli = spawnOwned([...PREFIX, 'redis-cli', '--cluster', 'create', ...ports.map((port) => `${HOST}:${port}`),
    '--cluster-replicas', '0', '--cluster-yes'], tmpdir())
  const timer = setTimeout(() => cli.child.kill('SIGKILL'), 30_000)
  await cli.closed.finally(() => clearTimeout(timer))
  if (cli.child.exitCode !== 0) {
    throw new Error(`redis-cli --cluster create exited (${cli.child.signalCode ?? cli.child.exitCode}):\n${cli.tail()}`)
  }
}

async function clusterStateOk (server: RedisServer): Promise<void> {
  let info = ''
  try {
    await pollUntil(async () => (info = String(await server.command('CLUSTER', 'INFO'))).includes('cluster_state:ok'), { interval: 50 })
  } catch {
    throw new Error(`cluster node ${server.port} never reached cluster_state:ok:\n${info}`)
  }
}

/** Three masters on free ports, slots spread by `redis-cli --cluster create`, every node at cluster_state:ok. */
export async function startRedisCluster (): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'fastify-realtime-cluster-'))
  tempDirs.add(dir)
  const argsFor = (port: number): string[] => ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`),
    '--cluster-node-timeout', '2000', '--dir', dir]
  const started = await Promise.allSettled([0, 1, 2].map(() => serverOn({ pick: () => freePort(MAX_CLUSTER_PORT) }, argsFor)))
  const servers = started.flatMap((result) => result.status === 'fulfilled' ? [result.value] : [])
  const stop = async (): Promise<void> => {
    await Promise.all(servers.map((server) => server.stop()))
    rmSync(dir, { recursive: true, force: true })
    tempDirs.delete(dir)
  }
  try {
    for (const result of started) if (result.status === 'rejected') throw result.reason
    await createCluster(servers.map((server) => server.port))
    await Promise.all(servers.map(clusterStateOk))
  } catch (err) {
    await stop()
    throw err
  }
  return { nodes: servers.map((server) => ({ host: HOST, port: server.port })), stop }
}

/** startRedisCluster(), stopped at teardown. */
export async function redisClusterFor (t: Teardown): Promise<RedisCluster> {
  const cluster = await startRedisCluster()
  t.teardown(() => cluster.stop())
  return cluster
}
