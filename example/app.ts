import { metrics } from '@opentelemetry/api'
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus'
import { MeterProvider } from '@opentelemetry/sdk-metrics'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import realtime, { type RealtimeOptions } from 'fastify-realtime'
import { Type } from 'typebox'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chat } from './chat-route.js'
import { live } from './live-route.js'
import { CLIENT_PAGE } from './client-page.js'
import { PAGE } from './page.js'

export interface ExampleOptions {
  logger?: FastifyServerOptions['logger']
  realtime?: RealtimeOptions
  /**
   * Serves `GET /metrics` in Prometheus' text format: installs an
   * OpenTelemetry MeterProvider (as the global one, before the plugin
   * registers) whose reader is the Prometheus exporter.
   */
  metrics?: boolean
  /** PEM certificate and key: the app serves HTTPS and WSS instead of HTTP and WS. */
  tls?: { cert: string | Buffer, key: string | Buffer }
}

const TEXT_BODY = Type.Object({ text: Type.String({ minLength: 1, maxLength: 2000 }) })
const NAME = Type.String({ minLength: 1, maxLength: 64 })

/** The example application: REST and WebSocket routes on one server. */
export async function buildApp (options: ExampleOptions = {}): Promise<FastifyInstance> {
  const logger = options.logger ?? false
  // Fastify types an HTTPS app by its server; the routes below use nothing of it.
  const app = options.tls === undefined
    ? Fastify({ logger })
    : Fastify({ logger, https: options.tls }) as unknown as FastifyInstance
  // Before the plugin registers: it takes its meter then.
  const prometheus = options.metrics === true ? installPrometheus() : undefined
  // GET /asyncapi.json: the AsyncAPI 3.0 document of the WebSocket routes, from their schemas.
  await app.register(realtime, {
    asyncapi: { path: '/asyncapi.json', info: { title: 'fastify-realtime example', version: '1.0.0' } },
    ...options.realtime
  })
  if (prometheus !== undefined) {
    app.get('/metrics', (request, reply) => {
      reply.hijack()
      prometheus.getMetricsRequestHandler(request.raw, reply.raw)
    })
    app.addHook('onClose', () => prometheus.shutdown())
  }

  app.get('/health', async () => ({ ok: true }))
  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(PAGE))

  // The same chat written with fastify-realtime/client, whose ES modules are served under /client/.
  // The client imports the protocol's modules as `../protocol/*.js`: they are served beside it.
  const clientDirectory = new URL('./', import.meta.resolve('fastify-realtime/client'))
  const clientModules = await readModules(clientDirectory)
  const protocolModules = await readModules(new URL('../protocol/', clientDirectory))
  app.get('/client', async (_request, reply) => reply.type('text/html; charset=utf-8').send(CLIENT_PAGE))
  for (const [prefix, modules] of [['/client', clientModules], ['/protocol', protocolModules]] as const) {
    app.get(`${prefix}/:file`, {
      schema: { params: Type.Object({ file: Type.String({ maxLength: 64 }) }) }
    }, async (request, reply) => {
      const { file } = request.params as { file: string }
      const source = modules.get(file)
      if (source === undefined) return reply.callNotFound()
      return reply.type('text/javascript; charset=utf-8').send(source)
    })
  }

  app.ws(chat)

  app.post('/notify/:user', {
    schema: { params: Type.Object({ user: NAME }), body: TEXT_BODY }
  }, async (request, reply) => {
    const { user } = request.params as { user: string }
    const { text } = request.body as { text: string }
    await app.realtime.namespace(chat).to(`user:${user}`).emit('notification', { text })
    return reply.code(202).send({ ok: true })
  })

  app.post('/rooms/:room/messages', {
    schema: { params: Type.Object({ room: NAME }), body: TEXT_BODY }
  }, async (request, reply) => {
    const { room } = request.params as { room: string }
    const { text } = request.body as { text: string }
    await app.realtime.namespace(chat).to(room).emit('said', { room, text, from: 'server' })
    return reply.code(202).send({ ok: true })
  })

  app.get('/rooms/:room/presence', {
    schema: { params: Type.Object({ room: NAME }) }
  }, async (request) => {
    const { room } = request.params as { room: string }
    const members = await app.realtime.namespace(chat).presence(room)
    return { room, count: members.length, members }
  })

  app.ws(live)
  // Per room, from 1, in this process (each instance counts its own pushes).
  const liveSeq = new Map<string, number>()
  app.post('/live/:room', {
    schema: { params: Type.Object({ room: NAME }), body: TEXT_BODY }
  }, async (request, reply) => {
    const { room } = request.params as { room: string }
    const { text } = request.body as { text: string }
    const seq = (liveSeq.get(room) ?? 0) + 1
    liveSeq.set(room, seq)
    await app.realtime.namespace(live).to(room).emit('update', { room, seq, text })
    return reply.code(202).send({ ok: true, seq })
  })

  app.ws('/echo', {
    raw: true,
    onMessage (conn, data) {
      const text = data.toString()
      conn.send(text === 'ping' ? 'pong' : `Server received: ${text}`)
    }
  })

  return app
}

/** A global MeterProvider read by a Prometheus exporter that serves through the app, not a server of its own. */
function installPrometheus (): PrometheusExporter {
  const exporter = new PrometheusExporter({ preventServerStart: true })
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [exporter] }))
  return exporter
}

/** The compiled ES modules of a directory of the installed package, by file name. */
async function readModules (directory: URL): Promise<Map<string, string>> {
  const path = fileURLToPath(directory)
  const modules = new Map<string, string>()
  for (const file of await readdir(path)) {
    if (file.endsWith('.js')) modules.set(file, await readFile(join(path, file), 'utf8'))
  }
  return modules
}
