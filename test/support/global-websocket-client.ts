/*
 * A child process for the client tests: connects fastify-realtime/client
 * with Node's own global WebSocket (undici; Node 20 exposes it with
 * --experimental-websocket) to argv[2], once for each options object of
 * the JSON array argv[3], one after the other. Prints every state change
 * as a JSON line: the run's index, the state, its info and `ms` since that
 * client was created. A client that opens is closed: every run ends in
 * `closed`.
 */
import { connect } from '../../lib/client/index.js'

const [url, runs] = process.argv.slice(2)
if (typeof (globalThis as { WebSocket?: unknown }).WebSocket !== 'function') throw new Error('no global WebSocket')

for (const [run, options] of (JSON.parse(runs!) as object[]).entries()) {
  const started = Date.now()
  const client = connect(url!, options)
  await new Promise<void>((resolve) => {
    client.on('state', (state, info) => {
      process.stdout.write(JSON.stringify({ run, state, info, ms: Date.now() - started }) + '\n')
      if (state === 'open') client.close()
      if (state === 'closed') resolve()
    })
  })
}
