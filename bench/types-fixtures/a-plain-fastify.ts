// (a) A plain Fastify app: the floor every other fixture is compared with.
import Fastify from 'fastify'

const app = Fastify({ logger: true })
app.get('/health', async () => ({ ok: true }))
await app.listen({ port: 3000 })
