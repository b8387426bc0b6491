import { test } from 'tap'
import { Type } from 'typebox'
import { RealtimeError } from '../lib/index.js'
import { build, connect, guardProcess } from './helper.js'
import type { FastifyInstance } from 'fastify'

const events = { said: Type.Object({ text: Type.String() }) }

async function chatApp (t: Parameters<typeof build>[0], log: string[] = []): Promise<FastifyInstance> {
  return build(t, (app) => {
    app.ws('/chat', {
      messages: {
        say: {
          data: Type.Object({ text: Type.String({ maxLength: 10 }) }, { additionalProperties: false }),
          reply: Type.Object({ echoed: Type.String() }),
          handler: (_conn, { text }) => ({ echoed: text })
        },
        later: {
          data: Type.Object({ text: Type.String() }),
          reply: Type.Object({ echoed: Type.String() }),
          handler: async (_conn, { text }) => {
            await new Promise((resolve) => setImmediate(resolve))
            return { echoed: text }
          }
        },
        nothing: { handler: () => {} },
        throws: {
          handler: () => { throw new Error('database password is hunter2') }
        },
        rejects: {
          handler: async () => { throw new Error('stack secrets') }
        },
        forbidden: {
          handler: () => { throw new RealtimeError('FORBIDDEN', 'not yours', [{ path: '/room', message: 'private' }]) }
        },
        unserialisable: {
          reply: Type.Any(),
          handler: () => ({ big: 10n })
        },
        record: {
          data: Type.Object({ note: Type.String() }),
          handler: (_conn, { note }) => { log.push(note) }
        }
      },
      events
    })
  })
}

test('a request gets exactly one reply carrying its id, string or number', async (t) => {
  const assertClean = guardProcess(t)
  const app = await chatApp(t)
  const client = await connect(t, app, '/chat')
  client.send({ type: 'say', data: { text: 'hi' }, id: 'c1' })
  t.same(await client.next(), { type: 'reply', id: 'c1', data: { echoed: 'hi' } })
  client.send({ type: 'later', data: { text: 'async' }, id: 7 })
  t.same(await client.next(), { type: 'reply', id: 7, data: { echoed: 'async' } })
  client.send({ type: 'nothing', id: 'n' })
  t.same(await client.next(), { type: 'reply', id: 'n', data: null }, 'a handler returning nothing answers null')
  // Without an id nothing is answered: the ping that follows is the next frame.
  client.send({ type: 'say', data: { text: 'quiet' } })
  client.send({ type: 'ping' })
  t.same(await client.next(), { type: 'pong' })
  assertClean()
})

test('a duplicate id is answered once per request, in order', async (t) => {
  const app = await chatApp(t)
  const client = await connect(t, app, '/chat')
  client.send({ type: 'say', data: { text: 'a' }, id: 'same' })
  client.send({ type: 'say', data: { text: 'b' }, id: 'same' })
  t.same(await client.next(), { type: 'reply', id: 'same', data: { echoed: 'a' } })
  t.same(await client.next(), { type: 'reply', id: 'same', data: { echoed: 'b' } })
})

test('application ping is answered with pong, with the id when given', async (t) => {
  const app = await chatApp(t)
  const client = await connect(t, app, '/chat')
  client.send({ type: 'ping' })
  t.same(await client.next(), { type: 'pong' })
  client.send({ type: 'ping', id: 9 })
  t.same(await client.next(), { type: 'pong', id: 9 })
})

test('requests, replies and error answers through an injected connection', async (t) => {
  const app = await chatApp(t)
  const client = await app.realtime.inject('/chat')
  t.same(await client.request('say', { text: 'hi' }), { echoed: 'hi' })
  t.same(await client.request('later', { text: 'async' }), { echoed: 'async' })
  t.equal(await client.request('nothing'), null, 'a handler returning nothing answers null')
  await t.rejects(client.request('say', { text: 'far too long for ten' }), { code: 'VALIDATION_FAILED' })
  await t.rejects(client.request('forbidden'), { code: 'FORBIDDEN', message: 'not yours', details: [{ path: '/room', message: 'private' }] })
  await t.rejects(client.request('throws'), { code: 'INTERNAL', message: 'Internal error' })
  await t.rejects(client.request('unknown'), { code: 'UNKNOWN_TYPE' })
  t.same(await client.request('say', { text: 'still' }), { echoed: 'still' }, 'the connection lives on')
})

test('every error code is answered and the connection stays usable', async (t) => {
  const assertClean = guardProcess(t)
  const app = await chatApp(t)
  const client = await connect(t, app, '/chat')
  const cases: Array<[string, unknown, Record<string, unknown>]> = [
    ['not JSON', '{', { type: 'error', error: { code: 'BAD_JSON', message: 'Message is not valid JSON' } }],
    ['plain text', 'hello', { type: 'error', error: { code: 'BAD_JSON' } }],
    ['empty frame', '', { type: 'error', error: { code: 'BAD_JSON' } }],
    ['a JSON array', '[1,2]', { type: 'error', error: { code: 'VALIDATION_FAILED', details: [{ path: '' }] } }],
    ['a JSON string', '"say"', { type: 'error', error: { code: 'VALIDATION_FAILED' } }],
    ['no type', '{}', { type: 'error', error: { code: 'VALIDATION_FAILED', details: [{ path: '/type' }] } }],
    ['numeric type', '{"type":42,"id":"a"}', { type: 'error', id: 'a', error: { code: 'VALIDATION_FAILED', details: [{ path: '/type' }] } }],
    ['unknown type', '{"type":"shout","id":"b"}', { type: 'error', id: 'b', error: { code: 'UNKNOWN_TYPE', message: "Unknown message type 'shout'" } }],
    ['prototype key as type', '{"type":"constructor","id":"c"}', { type: 'error', id: 'c', error: { code: 'UNKNOWN_TYPE' } }],
    ['bad id type', '{"type":"say","id":{"x":1},"data":{"text":"a"}}', { type: 'error', error: { code: 'VALIDATION_FAILED', details: [{ path: '/id' }] } }],
    ['missing data', '{"type":"say","id":"d"}', { type: 'error', id: 'd', error: { code: 'VALIDATION_FAILED', message: "Invalid data for 'say'" } }],
    ['wrong data type', '{"type":"say","id":"e","data":{"text":5}}', { type: 'error', id: 'e', error: { code: 'VALIDATION_FAILED', details: [{ path: '/text' }] } }],
    ['too long', `{"type":"say","id":"f","data":{"text":"${'x'.repeat(11)}"}}`, { type: 'error', id: 'f', error: { code: 'VALIDATION_FAILED', details: [{ path: '/text' }] } }],
    ['extra property', '{"type":"say","id":"g","data":{"text":"a","admin":true}}', { type: 'error', id: 'g', error: { code: 'VALIDATION_FAILED' } }],
    ['prototype pollution', '{"type":"say","id":"h","data":{"text":"a","__proto__":{"isAdmin":true}}}', { type: 'error', id: 'h', error: { code: 'BAD_JSON', message: 'Message contains a forbidden key' } }],
    ['constructor.prototype', '{"type":"say","data":{"constructor":{"prototype":{"isAdmin":true}}}}', { type: 'error', error: { code: 'BAD_JSON' } }],
    ['handler throws', '{"type":"throws","id":"i"}', { type: 'error', id: 'i', error: { code: 'INTERNAL', message: 'Internal error' } }],
    ['handler rejects', '{"type":"rejects","id":"j"}', { type: 'error', id: 'j', error: { code: 'INTERNAL', message: 'Internal error' } }],
    ['handler refuses', '{"type":"forbidden","id":"k"}', { type: 'error', id: 'k', error: { code: 'FORBIDDEN', message: 'not yours', details: [{ path: '/room', message: 'private' }] } }],
    ['reply JSON cannot carry', '{"type":"unserialisable","id":"l"}', { type: 'error', id: 'l', error: { code: 'INTERNAL' } }]
  ]
  for (const [name, frame, expected] of cases) {
    client.ws.send(frame as string)
    const answer = await client.next()
    t.match(answer, expected, name)
    if (expected.id === undefined) t.notOk('id' in answer, `${name}: no id in the answer`)
    // The next good message is still handled.
    t.same(await client.request('say', { text: 'ok' }), { type: 'reply', id: `r${requestCount()}`, data: { echoed: 'ok' } }, `${name}: still open`)
  }
  t.equal(({} as Record<string, unknown>).isAdmin, undefined, 'Object.prototype untouched')
  assertClean()
})

let requests = 0
function requestCount (): number {
  return ++requests
}

test('INTERNAL answers leak neither message nor stack, and the failure is logged once', async (t) => {
  const lines: string[] = []
  const app = await build(t, (app) => {
    app.ws('/chat', { messages: { throws: { handler: () => { throw new Error('database password is hunter2') } } } })
  }, { fastify: { logger: { level: 'error', stream: { write: (line: string) => { lines.push(line) } } } } })
  const client = await connect(t, app, '/chat')
  client.send({ type: 'throws', id: 1 })
  const raw = await client.nextRaw()
  t.notMatch(raw, /hunter2|stack|Error:/)
  t.same(JSON.parse(raw), { type: 'error', id: 1, error: { code: 'INTERNAL', message: 'Internal error' } })
  const logged = lines.filter((line) => line.includes('hunter2'))
  t.equal(logged.length, 1, 'logged once on the server')
  t.match(logged[0], /realtime handler failed/)
})

test('a binary frame on a JSON route gets UNSUPPORTED_FRAME and the connection lives on', async (t) => {
  const app = await chatApp(t)
  const client = await connect(t, app, '/chat')
  client.ws.send(Buffer.from([1, 2, 3]), { binary: true })
  t.match(await client.next(), { type: 'error', error: { code: 'UNSUPPORTED_FRAME' } })
  t.match(await client.request('say', { text: 'ok' }), { type: 'reply', data: { echoed: 'ok' } })
})

test('pathological JSON within maxPayload gets an error answer, not a crash', async (t) => {
  const assertClean = guardProcess(t)
  const app = await chatApp(t)
  const client = await connect(t, app, '/chat')
  const keys = Array.from({ length: 5000 }, (_, i) => `"k${i}":1`).join(',')
  const frames = [
    '['.repeat(60_000),
    '{"type":"say","data":' + '['.repeat(20_000) + ']'.repeat(20_000) + '}',
    `{"type":"say","data":{${keys}}}`,
    '{"type":"say","data":{"text":1e999}}'
  ]
  for (const frame of frames) {
    client.ws.send(frame)
    t.match(await client.next(), { type: 'error', error: { code: /^(BAD_JSON|VALIDATION_FAILED)$/ } }, frame.slice(0, 30))
  }
  // A lone surrogate escape is valid JSON: it is a string like any other.
  client.ws.send('{"type":"say","id":"s","data":{"text":"\\ud800"}}')
  t.same(await client.next(), { type: 'reply', id: 's', data: { echoed: '\ud800' } })
  t.match(await client.request('say', { text: 'alive' }), { type: 'reply', data: { echoed: 'alive' } })
  assertClean()
})

test('messages are handled in arrival order', async (t) => {
  const log: string[] = []
  const app = await chatApp(t, log)
  const client = await connect(t, app, '/chat')
  for (let i = 0; i < 50; i++) client.send({ type: 'record', data: { note: String(i) } })
  await client.request('say', { text: 'done' })
  t.same(log, Array.from({ length: 50 }, (_, i) => String(i)))
})

test('a refused frame whose id can be read is answered with that id, forbidden keys included', async (t) => {
  const assertClean = guardProcess(t)
  const app = await build(t, (app) => {
    app.ws('/chat', {
      rateLimit: { max: 4, interval: 60_000, maxViolations: 0 },
      messages: {
        say: {
          data: Type.Object({ room: Type.String(), text: Type.String() }),
          handler: () => {}
        }
      }
    })
  })
  const client = await connect(t, app, '/chat')
  client.ws.send('{"type":"say","id":"p1","data":{"__proto__":{"x":1},"room":"r","text":"t"}}')
  t.same(await client.next(), { type: 'error', id: 'p1', error: { code: 'BAD_JSON', message: 'Message contains a forbidden key' } })
  client.ws.send('{"id":7,"type":"say","data":{"constructor":{"prototype":{"x":1}},"room":"r","text":"t"}}')
  t.same(await client.next(), { type: 'error', id: 7, error: { code: 'BAD_JSON', message: 'Message contains a forbidden key' } })
  // An id that is not a request id is not echoed; nor is an id inside data.
  client.ws.send('{"type":"say","id":{"a":1},"data":{"__proto__":{}}}')
  t.same(await client.next(), { type: 'error', error: { code: 'BAD_JSON', message: 'Message contains a forbidden key' } })
  client.ws.send('{"type":"say","data":{"id":"inner","__proto__":{}}}')
  t.same(await client.next(), { type: 'error', error: { code: 'BAD_JSON', message: 'Message contains a forbidden key' } })
  t.equal(({} as Record<string, unknown>).x, undefined, 'nothing reached Object.prototype')
  // The route budget (4) is spent now: a refused frame with a forbidden key still gets its id.
  client.ws.send('{"type":"say","id":"p2","data":{"__proto__":{"x":1}}}')
  t.same(await client.next(), { type: 'error', id: 'p2', error: { code: 'RATE_LIMITED', message: 'Too many messages' } })
  assertClean()
})
