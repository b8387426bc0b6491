import { test } from 'tap'
import { Type } from 'typebox'
import { build, connect } from './helper.js'

const routes = (serialize: boolean | undefined) => ({
  ...(serialize === undefined ? {} : { serialize }),
  messages: {
    login: {
      reply: Type.Object({ at: Type.Number(), name: Type.String() }),
      handler: (conn: { emit: (type: 'profile', data: unknown) => void }) => {
        conn.emit('profile', { name: 'alice', passwordHash: 'secret', tags: ['a'] })
        return { at: 1, name: 'alice', passwordHash: 'secret' } as { at: number, name: string }
      }
    },
    broken: {
      reply: Type.Object({ at: Type.Number() }),
      handler: () => ({ at: 'not a number' }) as unknown as { at: number }
    }
  },
  events: { profile: Type.Object({ name: Type.String(), tags: Type.Array(Type.String()) }) }
})

test('replies and events are shaped by their schemas: undeclared fields never leave the server', async (t) => {
  const app = await build(t, (app) => {
    app.ws('/shaped', routes(undefined) as never)
  })
  const client = await connect(t, app, '/shaped')
  const reply = await client.request('login', null)
  t.same(reply, { type: 'reply', id: reply.id, data: { at: 1, name: 'alice' } }, 'passwordHash is not in the reply')
  t.same(await client.next(), { type: 'profile', data: { name: 'alice', tags: ['a'] } }, 'nor in the event')
  const room = app.realtime.namespace('/shaped')
  const all = client.next()
  await room.emit('profile', { name: 'bob', tags: [], passwordHash: 'x' } as never)
  t.same(await all, { type: 'profile', data: { name: 'bob', tags: [] } }, 'nor in a namespace-wide emit')
  t.match(await client.request('broken', null), { type: 'error', error: { code: 'INTERNAL' } },
    'a reply that does not fit its schema is an internal error, never sent half-formed')
})

test('serialize: false sends what the handler gives', async (t) => {
  const app = await build(t, (app) => {
    app.ws('/raw-json', routes(false) as never)
  })
  const client = await connect(t, app, '/raw-json')
  const reply = await client.request('login', null)
  t.same(reply.data, { at: 1, name: 'alice', passwordHash: 'secret' })
  t.same(await client.next(), { type: 'profile', data: { name: 'alice', passwordHash: 'secret', tags: ['a'] } })
})

test('serialize must be a boolean', async (t) => {
  await build(t, (app) => {
    t.throws(() => app.ws('/bad', { serialize: 'yes' } as never), { code: 'FST_RT_INVALID_OPTION', message: /serialize/ })
  })
})
