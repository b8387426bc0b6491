import Fastify from 'fastify'
import { test } from 'tap'
import { Type } from 'typebox'
import realtime, { RealtimeError, type RealtimeMessage } from '../lib/index.js'
import { build, connect, deferred } from './helper.js'

/*
 * Per-message hooks: preMessage runs after validation and before the
 * handler (plugin hooks, outer contexts first, then the route's own);
 * onMessageError hears of every error answer. Encapsulated like Fastify's.
 */

const SAY = Type.Object({ text: Type.String({ maxLength: 10 }) })

test('preMessage hooks run after validation, plugin hooks before route hooks, then the handler', async (t) => {
  const order: string[] = []
  const seen: RealtimeMessage[] = []
  const app = await build(t, (app) => {
    app.realtime.addHook('preMessage', (_conn, message) => { order.push('plugin 1'); seen.push(message) })
    app.ws('/chat', {
      preMessage: [() => { order.push('route 1') }, () => { order.push('route 2') }],
      messages: { say: { data: SAY, reply: Type.String(), handler: (_conn, { text }) => { order.push(`handler ${text}`); return text } } }
    })
    // Added after the route was declared: still covers it, as a Fastify hook would.
    app.realtime.addHook('preMessage', () => { order.push('plugin 2') })
  })
  const client = await connect(t, app, '/chat')
  t.match(await client.request('say', { text: 'x'.repeat(11) }), { error: { code: 'VALIDATION_FAILED' } })
  t.same(order, [], 'no hook runs for a message that fails validation')
  t.same(await client.request('say', { text: 'hi' }, 'a1'), { type: 'reply', id: 'a1', data: 'hi' })
  t.same(order, ['plugin 1', 'plugin 2', 'route 1', 'route 2', 'handler hi'])
  t.same(seen, [{ type: 'say', data: { text: 'hi' }, id: 'a1' }], 'the message is { type, data, id }')
})

test('a RealtimeError from a hook answers with its code, message and the request id; the handler does not run', async (t) => {
  let handled = 0
  const app = await build(t, (app) => {
    app.realtime.addHook('preMessage', (_conn, message) => {
      if ((message.data as { text: string }).text === 'sync') throw new RealtimeError('FORBIDDEN', 'not you', [{ path: '/text', message: 'no' }])
    })
    app.ws('/chat', {
      preMessage: async (_conn, message) => {
        if ((message.data as { text: string }).text === 'async') throw new RealtimeError('PAYMENT_REQUIRED', 'pay first')
      },
      messages: { say: { data: SAY, handler: () => { handled++ } } }
    })
  })
  const client = await connect(t, app, '/chat')
  t.same(await client.request('say', { text: 'sync' }, 7), {
    type: 'error', id: 7, error: { code: 'FORBIDDEN', message: 'not you', details: [{ path: '/text', message: 'no' }] }
  })
  t.same(await client.request('say', { text: 'async' }, 'x'), { type: 'error', id: 'x', error: { code: 'PAYMENT_REQUIRED', message: 'pay first' } })
  t.equal(handled, 0, 'the handler never ran')
  t.same(await client.request('say', { text: 'ok' }, 8), { type: 'reply', id: 8, data: null }, 'the connection stays open')
  t.equal(handled, 1)
})

test('async hooks are awaited in order; sync hooks cost no microtask', async (t) => {
  const order: string[] = []
  const entered = deferred()
  const release = deferred()
  const app = await build(t, (app) => {
    app.ws('/async', {
      preMessage: [async () => {
        order.push('async start')
        entered.resolve()
        await release.promise
        order.push('async end')
      }, () => { order.push('sync') }],
      messages: { go: { reply: Type.String(), handler: () => { order.push('handler'); return 'done' } } }
    })
    app.ws('/sync', {
      // A microtask queued by the hook runs after the handler only if nothing awaited in between.
      preMessage: () => { queueMicrotask(() => order.push('microtask')) },
      messages: { go: { handler: () => { order.push('sync handler') } } }
    })
  })
  const client = await connect(t, app, '/async')
  client.send({ type: 'go', id: 1 })
  const answer = client.next()
  await entered.promise
  await new Promise((resolve) => setImmediate(resolve))
  t.same(order, ['async start'], 'the handler waits for the async hook')
  release.resolve()
  t.same(await answer, { type: 'reply', id: 1, data: 'done' })
  t.same(order, ['async start', 'async end', 'sync', 'handler'])

  order.length = 0
  const fast = await connect(t, app, '/sync')
  t.same(await fast.request('go', null, 's1'), { type: 'reply', id: 's1', data: null })
  t.same(order, ['sync handler', 'microtask'], 'the handler ran in the same tick as the sync hook')
})

test('any other error from a hook answers INTERNAL with the id and is logged; nothing leaks', async (t) => {
  const lines: string[] = []
  let handled = 0
  const app = await build(t, (app) => {
    app.realtime.addHook('preMessage', (_conn, message) => {
      if (message.data === 'sync') throw new Error('secret sync detail')
      if (message.data === 'async') return Promise.reject(new Error('secret async detail'))
    })
    app.ws('/chat', { messages: { say: { handler: () => { handled++ } } } })
  }, { fastify: { logger: { level: 'error', stream: { write: (line: string) => { lines.push(line) } } } } })
  const client = await connect(t, app, '/chat')
  for (const data of ['sync', 'async']) {
    const raw = JSON.stringify(await client.request('say', data, data))
    t.same(JSON.parse(raw), { type: 'error', id: data, error: { code: 'INTERNAL', message: 'Internal error' } })
    t.notMatch(raw, /secret/)
    const logged = lines.filter((line) => line.includes(`secret ${data} detail`))
    t.equal(logged.length, 1, `${data}: logged once`)
    t.match(logged[0], /realtime preMessage hook failed/)
    t.match(logged[0], /"messageType":"say"/)
  }
  t.equal(handled, 0)
})

test('onMessageError hears of every error answer, plugin hooks first; its own failures are logged', async (t) => {
  const calls: Array<{ by: string, type: string, id: unknown, code: unknown, error: Error }> = []
  const lines: string[] = []
  const handlerError = new Error('handler broke')
  const app = await build(t, (app) => {
    app.realtime.addHook('onMessageError', (_conn, message, error) => {
      calls.push({ by: 'plugin', type: message.type, id: message.id, code: (error as RealtimeError).code, error })
    })
    app.realtime.addHook('onMessageError', () => { throw new Error('logger broke') })
    app.ws('/chat', {
      rateLimit: false,
      preMessage: (_conn, message) => { if (message.data === 'refuse') throw new RealtimeError('FORBIDDEN', 'refused') },
      onMessageError: async (_conn, message, error) => {
        calls.push({ by: 'route', type: message.type, id: message.id, code: (error as RealtimeError).code, error })
      },
      messages: {
        say: { data: Type.String(), handler: (_conn, text) => { if (text === 'throw') throw handlerError } },
        limited: { rateLimit: { max: 1, interval: 60_000 }, handler: () => {} }
      }
    })
  }, { fastify: { logger: { level: 'error', stream: { write: (line: string) => { lines.push(line) } } } } })
  const client = await connect(t, app, '/chat')
  t.match(await client.request('say', 42, 1), { error: { code: 'VALIDATION_FAILED' } })
  t.match(await client.request('say', 'refuse', 2), { error: { code: 'FORBIDDEN' } })
  t.match(await client.request('say', 'throw', 3), { error: { code: 'INTERNAL' } })
  t.match(await client.request('nope', null, 4), { error: { code: 'UNKNOWN_TYPE' } })
  t.match(await client.request('limited', null, 5), { type: 'reply' })
  t.match(await client.request('limited', null, 6), { error: { code: 'RATE_LIMITED' } })
  t.match(await client.request('say', 'fine', 7), { type: 'reply' })
  const byPlugin = calls.filter((call) => call.by === 'plugin')
  t.same(byPlugin.map((call) => [call.id, call.type, call.code]), [
    [1, 'say', 'VALIDATION_FAILED'], [2, 'say', 'FORBIDDEN'], [3, 'say', undefined], [4, 'nope', 'UNKNOWN_TYPE'], [6, 'limited', 'RATE_LIMITED']
  ])
  t.same(calls.filter((call) => call.by === 'route').map((call) => call.id), [1, 2, 3, 4, 6], 'the route hook after the plugin hooks')
  t.equal(byPlugin[2]!.error, handlerError, 'a handler error is passed as thrown')
  t.ok(byPlugin[0]!.error instanceof RealtimeError, 'a refusal by the plugin is passed as a RealtimeError')
  t.match(byPlugin[0]!.error, { details: [{ path: '' }] }, 'with the validation details sent')
  t.equal(lines.filter((line) => line.includes('realtime onMessageError hook failed')).length, 5, 'the failing hook is logged each time')
})

test('hooks are encapsulated: a child context covers its routes and descendants, never its siblings', async (t) => {
  const app = await build(t, async (app) => {
    app.realtime.addHook('preMessage', (_conn, message) => {
      if (message.data === 'root') throw new RealtimeError('ROOT', 'refused by the root hook')
    })
    const echo = (): object => ({ messages: { say: { handler: (_conn: unknown, data: unknown) => data } } })
    await app.register(async (child) => {
      child.ws('/child', echo())
      child.realtime.addHook('preMessage', (_conn, message) => {
        if (message.data === 'child') throw new RealtimeError('CHILD', 'refused by the child hook')
      })
      await child.register(async (grandchild) => { grandchild.ws('/grandchild', echo()) })
    }, { prefix: '/a' })
    await app.register(async (sibling) => { sibling.ws('/sibling', echo()) }, { prefix: '/b' })
    app.ws('/top', echo())
  })
  const answers = async (path: string): Promise<unknown[]> => {
    const client = await connect(t, app, path)
    const codes = []
    for (const data of ['root', 'child', 'ok']) {
      const answer = await client.request('say', data)
      codes.push(answer.type === 'error' ? answer.error.code : answer.data)
    }
    return codes
  }
  t.same(await answers('/a/child'), ['ROOT', 'CHILD', 'ok'])
  t.same(await answers('/a/grandchild'), ['ROOT', 'CHILD', 'ok'], 'descendants inherit')
  t.same(await answers('/b/sibling'), ['ROOT', 'child', 'ok'], 'the sibling context is unaffected')
  t.same(await answers('/top'), ['ROOT', 'child', 'ok'], 'the parent context is unaffected')
  t.equal(typeof app.realtime.namespace, 'function')
})

test('a child context sees the same decorator: namespaces, counters and events', async (t) => {
  let seen: unknown
  const brokerDown = deferred<void>()
  const app = await build(t, async (app) => {
    app.ws('/chat', { messages: {} })
    await app.register(async (child) => {
      seen = child.realtime.namespace('/chat')
      child.realtime.on('broker:down', () => { brokerDown.resolve() })
    })
  })
  t.equal(seen, app.realtime.namespace('/chat'))
  app.realtime.emit('broker:down')
  await brokerDown.promise
  t.pass('a listener added through the child hears the decorator\'s events')
})

test('addHook refuses a bad name, a non-function, and any call once the app is ready', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime)
  t.throws(() => app.realtime.addHook('onMessage' as 'preMessage', () => {}), { code: 'FST_RT_INVALID_OPTION' })
  t.throws(() => app.realtime.addHook('preMessage', 'nope' as never), { code: 'FST_RT_INVALID_OPTION' })
  t.throws(() => app.ws('/x', { preMessage: ['nope'] as never, messages: {} }), { code: 'FST_RT_INVALID_OPTION' })
  let childError: unknown
  await app.register(async (child) => {
    child.ws('/y', { messages: {} })
    await child.after()
    child.addHook('onReady', async () => {
      try { child.realtime.addHook('preMessage', () => {}) } catch (err) { childError = err }
    })
  })
  await app.ready()
  t.throws(() => app.realtime.addHook('preMessage', () => {}), { code: 'FST_RT_HOOK_AFTER_READY' })
  t.match(childError, { code: 'FST_RT_HOOK_AFTER_READY' }, 'also from a child context, also during onReady')
})
