// (e) The same ten endpoint pairs as REST routes, typed by @fastify/type-provider-typebox.
import Fastify from 'fastify'
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'

const app = Fastify().withTypeProvider<TypeBoxTypeProvider>()

app.post('/r0/join', {
  schema: { body: Type.Object({ room: Type.String() }) }
}, async (request) => { const room: string = request.body.room; return room })
app.post('/r0/say', {
  schema: {
    body: Type.Object({ room: Type.String(), text: Type.String() }),
    response: { 200: Type.Object({ at: Type.Number() }) }
  }
}, async (request) => {
  const { room, text } = request.body
  console.log(room, text)
  return { at: Date.now() }
})

app.post('/r1/join', {
  schema: { body: Type.Object({ room: Type.String() }) }
}, async (request) => { const room: string = request.body.room; return room })
app.post('/r1/say', {
  schema: {
    body: Type.Object({ room: Type.String(), text: Type.String() }),
    response: { 200: Type.Object({ at: Type.Number() }) }
  }
}, async (request) => {
  const { room, text } = request.body
  console.log(room, text)
  return { at: Date.now() }
})

app.post('/r2/join', {
  schema: { body: Type.Object({ room: Type.String() }) }
}, async (request) => { const room: string = request.body.room; return room })
app.post('/r2/say', {
  schema: {
    body: Type.Object({ room: Type.String(), text: Type.String() }),
    response: { 200: Type.Object({ at: Type.Number() }) }
  }
}, async (request) => {
  const { room, text } = request.body
  console.log(room, text)
  return { at: Date.now() }
})

app.post('/r3/join', {
  schema: { body: Type.Object({ room: Type.String() }) }
}, async (request) => { const room: string = request.body.room; return room })
app.post('/r3/say', {
  schema: {
    body: Type.Object({ room: Type.String(), text: Type.String() }),
    response: { 200: Type.Object({ at: Type.Number() }) }
  }
}, async (request) => {
  const { room, text } = request.body
  console.log(room, text)
  return { at: Date.now() }
})

app.post('/r4/join', {
  schema: { body: Type.Object({ room: Type.String() }) }
}, async (request) => { const room: string = request.body.room; return room })
app.post('/r4/say', {
  schema: {
    body: Type.Object({ room: Type.String(), text: Type.String() }),
    response: { 200: Type.Object({ at: Type.Number() }) }
  }
}, async (request) => {
  const { room, text } = request.body
  console.log(room, text)
  return { at: Date.now() }
})

app.post('/r5/join', {
  schema: { body: Type.Object({ room: Type.String() }) }
}, async (request) => { const room: string = request.body.room; return room })
app.post('/r5/say', {
  schema: {
    body: Type.Object({ room: Type.String(), text: Type.String() }),
    response: { 200: Type.Object({ at: Type.Number() }) }
  }
}, async (request) => {
  const { room, text } = request.body
  console.log(room, text)
  return { at: Date.now() }
})

app.post('/r6/join', {
  schema: { body: Type.Object({ room: Type.String() }) }
}, async (request) => { const room: string = request.body.room; return room })
app.post('/r6/say', {
  schema: {
    body: Type.Object({ room: Type.String(), text: Type.String() }),
    response: { 200: Type.Object({ at: Type.Number() }) }
  }
}, async (request) => {
  const { room, text } = request.body
  console.log(room, text)
  return { at: Date.now() }
})

app.post('/r7/join', {
  schema: { body: Type.Object({ room: Type.String() }) }
}, async (request) => { const room: string = request.body.room; return room })
app.post('/r7/say', {
  schema: {
    body: Type.Object({ room: Type.String(), text: Type.String() }),
    response: { 200: Type.Object({ at: Type.Number() }) }
  }
}, async (request) => {
  const { room, text } = request.body
  console.log(room, text)
  return { at: Date.now() }
})

app.post('/r8/join', {
  schema: { body: Type.Object({ room: Type.String() }) }
}, async (request) => { const room: string = request.body.room; return room })
app.post('/r8/say', {
  schema: {
    body: Type.Object({ room: Type.String(), text: Type.String() }),
    response: { 200: Type.Object({ at: Type.Number() }) }
  }
}, async (request) => {
  const { room, text } = request.body
  console.log(room, text)
  return { at: Date.now() }
})

app.post('/r9/join', {
  schema: { body: Type.Object({ room: Type.String() }) }
}, async (request) => { const room: string = request.body.room; return room })
app.post('/r9/say', {
  schema: {
    body: Type.Object({ room: Type.String(), text: Type.String() }),
    response: { 200: Type.Object({ at: Type.Number() }) }
  }
}, async (request) => {
  const { room, text } = request.body
  console.log(room, text)
  return { at: Date.now() }
})
