import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import realtime, { type RealtimeOptions } from 'fastify-realtime'
import { Type } from 'typebox'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chat } from './chat-route.js'
import { CLIENT_PAGE } from './client-page.js'
import { PAGE } from './page.js'

export interface ExampleOptions {
  logger?: FastifyServerOptions['logger']
  realtime?: RealtimeOptions
}

const TEXT_BODY = Type.Object({ text: Type.String({ minLength: 1, maxLength: 2000 }) })
const NAME = Type.String({ minLength: 1, maxLength: 64 })

/** The example application: REST and WebSocket routes on one server. */
export async function buildApp (options: ExampleOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: options.logger ?? false })
  await app.register(realtime, options.realtime ?? {})

  app.get('/health', async () => ({ ok: true }))
  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(PAGE))

  // The same chat written with fastify-realtime/client, whose ES modules are served under /client/
  // (and the wire protocol's, which they import from ../protocol/, under /protocol/).
  const clientModules = await readClientModules()
  app.get('/client', async (_request, reply) => reply.type('text/html; charset=utf-8').send(CLIENT_PAGE))
  for (const directory of CLIENT_DIRECTORIES) {
    app.get(`/${directory}/:file`, {
      schema: { params: Type.Object({ file: Type.String({ maxLength: 64 }) }) }
    }, async (request, reply) => {
      const { file } = request.params as { file: string }
      const source = clientModules.get(`${directory}/${file}`)
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

  app.ws('/echo', {
    raw: true,
    onMessage (conn, data) {
      const text = data.toString()
      conn.send(text === 'ping' ? 'pong' : `Server received: ${text}`)
    }
  })

  return app
}

/** The compiled client's directory and the one it imports the wire protocol from. */
const CLIENT_DIRECTORIES = ['client', 'protocol'] as const

/** The compiled client's modules, by `<directory>/<file>`, as installed with the package. */
async function readClientModules (): Promise<Map<string, string>> {
  const client = new URL('./', import.meta.resolve('fastify-realtime/client'))
  const modules = new Map<string, string>()
  for (const name of CLIENT_DIRECTORIES) {
    const directory = fileURLToPath(new URL(`../${name}/`, client))
    for (const file of await readdir(directory)) {
      if (file.endsWith('.js')) modules.set(`${name}/${file}`, await readFile(join(directory, file), 'utf8'))
    }
  }
  return modules
}
