// (d) Ten WebSocket routes, each with a join, a say with a reply, and one event.
import Fastify from 'fastify'
import realtime from 'fastify-realtime'
import { Type } from 'typebox'

const app = Fastify()
await app.register(realtime)

app.ws('/r0', {
  messages: {
    join: {
      data: Type.Object({ room: Type.String() }),
      handler: async (conn, { room }) => { await conn.join(room) }
    },
    say: {
      data: Type.Object({ room: Type.String(), text: Type.String() }),
      reply: Type.Object({ at: Type.Number() }),
      handler: (conn, { room, text }) => {
        conn.to(room).emit('said0', { room, text })
        return { at: Date.now() }
      }
    }
  },
  events: { said0: Type.Object({ room: Type.String(), text: Type.String() }) }
})

app.ws('/r1', {
  messages: {
    join: {
      data: Type.Object({ room: Type.String() }),
      handler: async (conn, { room }) => { await conn.join(room) }
    },
    say: {
      data: Type.Object({ room: Type.String(), text: Type.String() }),
      reply: Type.Object({ at: Type.Number() }),
      handler: (conn, { room, text }) => {
        conn.to(room).emit('said1', { room, text })
        return { at: Date.now() }
      }
    }
  },
  events: { said1: Type.Object({ room: Type.String(), text: Type.String() }) }
})

app.ws('/r2', {
  messages: {
    join: {
      data: Type.Object({ room: Type.String() }),
      handler: async (conn, { room }) => { await conn.join(room) }
    },
    say: {
      data: Type.Object({ room: Type.String(), text: Type.String() }),
      reply: Type.Object({ at: Type.Number() }),
      handler: (conn, { room, text }) => {
        conn.to(room).emit('said2', { room, text })
        return { at: Date.now() }
      }
    }
  },
  events: { said2: Type.Object({ room: Type.String(), text: Type.String() }) }
})

app.ws('/r3', {
  messages: {
    join: {
      data: Type.Object({ room: Type.String() }),
      handler: async (conn, { room }) => { await conn.join(room) }
    },
    say: {
      data: Type.Object({ room: Type.String(), text: Type.String() }),
      reply: Type.Object({ at: Type.Number() }),
      handler: (conn, { room, text }) => {
        conn.to(room).emit('said3', { room, text })
        return { at: Date.now() }
      }
    }
  },
  events: { said3: Type.Object({ room: Type.String(), text: Type.String() }) }
})

app.ws('/r4', {
  messages: {
    join: {
      data: Type.Object({ room: Type.String() }),
      handler: async (conn, { room }) => { await conn.join(room) }
    },
    say: {
      data: Type.Object({ room: Type.String(), text: Type.String() }),
      reply: Type.Object({ at: Type.Number() }),
      handler: (conn, { room, text }) => {
        conn.to(room).emit('said4', { room, text })
        return { at: Date.now() }
      }
    }
  },
  events: { said4: Type.Object({ room: Type.String(), text: Type.String() }) }
})

app.ws('/r5', {
  messages: {
    join: {
      data: Type.Object({ room: Type.String() }),
      handler: async (conn, { room }) => { await conn.join(room) }
    },
    say: {
      data: Type.Object({ room: Type.String(), text: Type.String() }),
      reply: Type.Object({ at: Type.Number() }),
      handler: (conn, { room, text }) => {
        conn.to(room).emit('said5', { room, text })
        return { at: Date.now() }
      }
    }
  },
  events: { said5: Type.Object({ room: Type.String(), text: Type.String() }) }
})

app.ws('/r6', {
  messages: {
    join: {
      data: Type.Object({ room: Type.String() }),
      handler: async (conn, { room }) => { await conn.join(room) }
    },
    say: {
      data: Type.Object({ room: Type.String(), text: Type.String() }),
      reply: Type.Object({ at: Type.Number() }),
      handler: (conn, { room, text }) => {
        conn.to(room).emit('said6', { room, text })
        return { at: Date.now() }
      }
    }
  },
  events: { said6: Type.Object({ room: Type.String(), text: Type.String() }) }
})

app.ws('/r7', {
  messages: {
    join: {
      data: Type.Object({ room: Type.String() }),
      handler: async (conn, { room }) => { await conn.join(room) }
    },
    say: {
      data: Type.Object({ room: Type.String(), text: Type.String() }),
      reply: Type.Object({ at: Type.Number() }),
      handler: (conn, { room, text }) => {
        conn.to(room).emit('said7', { room, text })
        return { at: Date.now() }
      }
    }
  },
  events: { said7: Type.Object({ room: Type.String(), text: Type.String() }) }
})

app.ws('/r8', {
  messages: {
    join: {
      data: Type.Object({ room: Type.String() }),
      handler: async (conn, { room }) => { await conn.join(room) }
    },
    say: {
      data: Type.Object({ room: Type.String(), text: Type.String() }),
      reply: Type.Object({ at: Type.Number() }),
      handler: (conn, { room, text }) => {
        conn.to(room).emit('said8', { room, text })
        return { at: Date.now() }
      }
    }
  },
  events: { said8: Type.Object({ room: Type.String(), text: Type.String() }) }
})

app.ws('/r9', {
  messages: {
    join: {
      data: Type.Object({ room: Type.String() }),
      handler: async (conn, { room }) => { await conn.join(room) }
    },
    say: {
      data: Type.Object({ room: Type.String(), text: Type.String() }),
      reply: Type.Object({ at: Type.Number() }),
      handler: (conn, { room, text }) => {
        conn.to(room).emit('said9', { room, text })
        return { at: Date.now() }
      }
    }
  },
  events: { said9: Type.Object({ room: Type.String(), text: Type.String() }) }
})
