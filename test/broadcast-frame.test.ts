import { test } from 'tap'
import { Type } from 'typebox'
import WebSocket from 'ws'
import { build, waitUntil, wsUrl } from './helper.js'

/*
 * Broadcasts are framed once and written to each socket's stream
 * (lib/broadcast-frame.ts). What a client reads must be exactly what
 * `ws.send()` would have produced, in order, for any payload size, and a
 * connection with compression negotiated must still get ws's own framing.
 */

/** Opens a raw client and records every text frame it receives. */
async function listener (url: string, deflate: boolean): Promise<{ ws: WebSocket, frames: string[], next: (count: number) => Promise<string[]> }> {
  const ws = new WebSocket(url, { perMessageDeflate: deflate })
  const frames: string[] = []
  let waiting: { count: number, resolve: (frames: string[]) => void } | undefined
  ws.on('message', (data, isBinary) => {
    frames.push(isBinary ? '<binary>' : data.toString())
    if (waiting !== undefined && frames.length >= waiting.count) waiting.resolve(frames.slice(0, waiting.count))
  })
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  return {
    ws,
    frames,
    next: async (count) => frames.length >= count ? frames.slice(0, count) : new Promise((resolve) => { waiting = { count, resolve } })
  }
}

test('a burst of broadcasts reaches plain and compressed connections whole and in order; only the compressed one goes through ws.send', async (t) => {
  const app = await build(t, (app) => {
    app.ws('/room', {
      events: { tick: Type.Object({ seq: Type.Integer(), text: Type.String() }) },
      onOpen: (conn) => conn.join('all')
    })
    // About 10 MB in one tick to each client: more than the kernel buffers, so the slow-consumer cap is raised.
  }, { realtime: { perMessageDeflate: { threshold: 0 }, maxBufferedBytes: 64 * 1024 * 1024 } })
  const plain = await listener(wsUrl(app, '/room'), false)
  const compressed = await listener(wsUrl(app, '/room'), true)
  t.teardown(() => { plain.ws.terminate(); compressed.ws.terminate() })
  const ns = app.realtime.namespace('/room')
  await waitUntil(() => ns.roomSize('all') >= 2)

  // Count what goes through ws's own send() on each server-side socket.
  const sends = new Map<WebSocket, number>()
  for (const conn of ns.connections()) {
    const socket = conn.socket
    sends.set(socket, 0)
    const send = socket.send.bind(socket)
    socket.send = ((...args: Parameters<WebSocket['send']>) => {
      sends.set(socket, sends.get(socket)! + 1)
      send(...args)
    }) as WebSocket['send']
  }

  // Payload lengths on each side of the 7-bit, 16-bit and 64-bit length encodings.
  const sizes = [0, 100, 125, 126, 200, 65_535, 65_536, 70_000]
  const expected: string[] = []
  for (let seq = 0; seq < 400; seq++) {
    const data = { seq, text: 'é'.repeat(sizes[seq % sizes.length]! / 2) }
    expected.push(JSON.stringify({ type: 'tick', data }))
    // Back to back, in one tick: the writes are coalesced per socket.
    void ns.to('all').emit('tick', data)
  }
  t.same(await plain.next(400), expected, 'the plain connection read every frame as sent')
  t.same(await compressed.next(400), expected, 'the compressed connection too')
  const [first, second] = [...sends.values()]
  const counts = [first, second].sort((a, b) => a! - b!)
  t.same(counts, [0, 400], 'the plain socket was written directly, the compressed one through ws.send')
})

test('a reply sent in the same tick as a broadcast arrives after it', async (t) => {
  const app = await build(t, (app) => {
    const ns = app.ws('/order', {
      messages: {
        shout: {
          reply: Type.String(),
          handler: (conn) => {
            void ns.to('all').emit('heard', 'before the reply')
            conn.send('{"type":"direct"}')
            return 'the reply'
          }
        }
      },
      events: { heard: Type.String() },
      onOpen: (conn) => conn.join('all')
    })
  })
  const client = await listener(wsUrl(app, '/order'), false)
  t.teardown(() => client.ws.terminate())
  client.ws.send(JSON.stringify({ type: 'shout', id: 1 }))
  t.same(await client.next(3), [
    '{"type":"heard","data":"before the reply"}',
    '{"type":"direct"}',
    '{"type":"reply","id":1,"data":"the reply"}'
  ])
})

test('frames to one connection (emits, replies) arrive whole at every length, on plain and compressed connections', async (t) => {
  const sizes = [0, 100, 125, 126, 200, 65_535, 65_536, 70_000]
  const app = await build(t, (app) => {
    app.ws('/one', {
      messages: {
        burst: {
          reply: Type.Integer(),
          handler: (conn) => {
            sizes.forEach((size, seq) => conn.emit('tick', { seq, text: 'é'.repeat(size / 2) }))
            return sizes.length
          }
        }
      },
      events: { tick: Type.Object({ seq: Type.Integer(), text: Type.String() }) }
    })
  }, { realtime: { perMessageDeflate: { threshold: 0 }, maxBufferedBytes: 64 * 1024 * 1024 } })
  const expected = [
    ...sizes.map((size, seq) => JSON.stringify({ type: 'tick', data: { seq, text: 'é'.repeat(size / 2) } })),
    `{"type":"reply","id":1,"data":${sizes.length}}`
  ]
  for (const deflate of [false, true]) {
    const client = await listener(wsUrl(app, '/one'), deflate)
    t.teardown(() => client.ws.terminate())
    client.ws.send(JSON.stringify({ type: 'burst', id: 1 }))
    t.same(await client.next(expected.length), expected, deflate ? 'compressed' : 'plain')
  }
})
