// (b) The plugin registered, no route: what importing it costs.
import Fastify from 'fastify'
import realtime from 'fastify-realtime'

const app = Fastify({ logger: true })
await app.register(realtime, { heartbeat: { interval: 30_000, timeout: 10_000 } })
app.get('/health', async () => ({ ok: true }))
await app.listen({ port: 3000 })
