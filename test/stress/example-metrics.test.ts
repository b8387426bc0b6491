import { test } from 'tap'
import WebSocket from 'ws'
import { TestClient } from '../helper.js'
import { startExample } from '../support/example-server.js'

/*
 * The example started as `METRICS=1 npm start` starts it, scraped the way
 * Prometheus scrapes it.
 */

test('METRICS=1: GET /metrics serves the plugin\'s metrics in Prometheus text format', async (t) => {
  const server = await startExample({ METRICS: '1' })
  t.teardown(() => server.stop())
  const base = `http://127.0.0.1:${server.port}`
  const clients: TestClient[] = []
  for (const user of ['alice', 'bob']) {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/chat?token=demo-${user}`)
    t.teardown(() => { ws.terminate() })
    const client = new TestClient(ws)
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('unexpected-response', (_req, res) => reject(new Error(String(res.statusCode))))
    })
    clients.push(client)
  }
  t.match(await clients[0]!.request('join', { room: 'lobby' }), { type: 'reply' })

  const response = await fetch(`${base}/metrics`)
  t.equal(response.status, 200)
  t.match(response.headers.get('content-type'), /^text\/plain/)
  const text = await response.text()
  const names = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((match) => match[1]!).filter((name) => name !== 'target_info'))
  t.ok(names.size >= 3, `metrics served: ${[...names].join(', ')}`)
  for (const name of names) t.match(name, /^fastify_realtime_/, `${name} starts with fastify_realtime_`)
  t.match(text, /^fastify_realtime_connections_open\{route="\/chat",[^}]*\} 2$/m, 'two connections open on /chat')
  t.match(text, /^fastify_realtime_messages_inbound_total\{route="\/chat",message_type="join",outcome="handled"[^}]*\} 1$/m)

  t.equal((await fetch(`${base}/health`)).status, 200, 'the pinned routes are unchanged')
})

test('without METRICS, /metrics does not exist', async (t) => {
  const server = await startExample()
  t.teardown(() => server.stop())
  t.equal((await fetch(`http://127.0.0.1:${server.port}/metrics`)).status, 404)
})
