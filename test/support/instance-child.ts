// One instance in its own process, for crash (SIGKILL) and hang (SIGSTOP)
// tests, bundled from source by child-instance.ts:
//   node instance-child.mjs <redis url> <presence ttl ms>
// Prints {"port": N} once it listens, then {"broker": "down" | "up"} as its
// broker loses and regains Redis.
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import realtime from '../../lib/index.js'
import { presenceRoute } from '../fixtures/chat-route.js'

const [redis, presenceTtl] = process.argv.slice(2)
const app = Fastify()
await app.register(realtime, { redis: redis!, presenceTtl: Number(presenceTtl), heartbeat: false })
app.ws(presenceRoute)
app.realtime.on('broker:down', () => process.stdout.write('{"broker":"down"}\n'))
app.realtime.on('broker:up', () => process.stdout.write('{"broker":"up"}\n'))
await app.listen({ port: 0, host: '127.0.0.1' })
process.stdout.write(JSON.stringify({ port: (app.server.address() as AddressInfo).port }) + '\n')
