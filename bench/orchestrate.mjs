// What bench/run.mjs and bench/capacity.mjs share: servers under test and
// load generators in child processes, driven over IPC.
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'

const SERVER = fileURLToPath(new URL('./server.mjs', import.meta.url))
const LOAD = fileURLToPath(new URL('./load.mjs', import.meta.url))
/** No cell may take longer than this; a stuck one fails the run instead of hanging it. */
const CELL_DEADLINE_MS = 120_000

export function rpc (child, cmd, params = {}) {
  const rid = Math.random()
  return new Promise((resolve) => {
    const onMessage = (message) => {
      if (message.rid !== rid) return
      child.off('message', onMessage)
      resolve(message)
    }
    child.on('message', onMessage)
    child.send({ rid, cmd, ...params })
  })
}

export async function startServer (peer, redisUrl) {
  const argv = redisUrl === undefined ? [peer] : [peer, redisUrl]
  // BENCH_PROFILE=<dir> writes a V8 CPU profile of every server process there (for `node bench/profile-summary.mjs`).
  const profile = process.env.BENCH_PROFILE === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`]
  const child = fork(SERVER, argv, { execArgv: ['--expose-gc', ...profile], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const [ready] = await once(child, 'message')
  const host = `ws://127.0.0.1:${ready.port}`
  return { child, url: host + ready.path, protocol: ready.protocol, cpu: async () => (await rpc(child, 'cpu')).cpu }
}

/** Asks a child to exit (a server closes first, so a CPU profile gets written); kills it after 5 s. */
export async function stop (child) {
  if (child.exitCode !== null) return
  const exited = once(child, 'exit')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
  if (child.connected) child.send({ cmd: 'close' })
  await exited
  clearTimeout(timer)
}

/** Runs a load job; `onAsk(what)` runs when the generator asks (a CPU mark, a start signal). */
export async function runJob (job, params, onAsk = async () => {}) {
  const load = fork(LOAD, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${job} did not finish in ${CELL_DEADLINE_MS} ms`)), CELL_DEADLINE_MS)
      load.on('message', async (message) => {
        if (message.ask !== undefined) {
          await onAsk(message.ask)
          load.send({ answer: message.ask })
        } else {
          clearTimeout(timer)
          if (message.error !== undefined) reject(new Error(message.error))
          else resolve(message.result)
        }
      })
      load.send({ job, ...params })
    })
  } finally {
    await stop(load)
  }
}

export async function withServers (peer, count, redisUrl, fn) {
  const servers = []
  try {
    for (let i = 0; i < count; i++) servers.push(await startServer(peer, redisUrl))
    return await fn(...servers)
  } finally {
    for (const server of servers) await stop(server.child)
  }
}
