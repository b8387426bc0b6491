// One instance in its own process, for crash (SIGKILL) and hang (SIGSTOP)
// tests: node instance-child.mjs <redis url> <presence ttl ms>
// Prints {"port": N} once it listens, then {"broker": "down" | "up"} as its
// broker loses and regains Redis. Runs the compiled plugin (npm test builds first).
import Fastify from 'fastify'
import { Type } from 'typebox'
import realtime from '../../dist/lib/index.js'

const [redis, presenceTtl] = process.argv.slice(2)
const app = Fastify()
await app.register(realtime, { redis, presenceTtl: Number(presenceTtl), heartbeat: false })
app.ws('/presence', {
  presence: { events: true },
  preValidation: async (request) => { request.user = { id: request.query.user ?? 'anonymous' } },
  messages: { join: { data: Type.Object({ room: Type.String() }), handler: (conn, { room }) => conn.join(room) } }
})
app.realtime.on('broker:down', () => process.stdout.write('{"broker":"down"}\n'))
app.realtime.on('broker:up', () => process.stdout.write('{"broker":"up"}\n'))
await app.listen({ port: 0, host: '127.0.0.1' })
process.stdout.write(JSON.stringify({ port: app.server.address().port }) + '\n')
