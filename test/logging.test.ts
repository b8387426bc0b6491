import { Writable } from 'node:stream'
import { test } from 'tap'
import { build, connect } from './helper.js'

test('conn.log lines carry the connection id, namespace, user id and the upgrade request id', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line))
      done()
    }
  })
  const app = await build(t, (app) => {
    app.ws('/chat', {
      preValidation: async (request) => { (request as { user?: unknown }).user = { id: 'alice' } },
      messages: { hello: { handler: (conn) => { conn.log.info('hello from a handler') } } }
    })
  }, { fastify: { logger: { level: 'info', stream } } })
  const client = await connect(t, app, '/chat')
  const conn = [...app.realtime.namespace('/chat').connections()][0]!
  await client.request('hello', null)
  const line = lines.find((entry) => entry.msg === 'hello from a handler')
  t.match(line, { connectionId: conn.id, namespace: '/chat', userId: 'alice', reqId: String(conn.request?.id ?? line?.reqId) })
  const incoming = lines.find((entry) => entry.msg === 'incoming request' && (entry.req as { url?: string }).url === '/chat')
  t.equal(line?.reqId, incoming?.reqId, 'the request id is the upgrade request\'s')
})
