// Soak: two instances and Redis under a steady fan-out for a long time,
// Redis killed and restarted every few minutes, a slow consumer present.
//
//   npm run soak                       # 10 minutes, 5,000 connections, 200 pushes/s
//   SOAK_MINUTES=3 SOAK_CONNECTIONS=2000 SOAK_RESTART_EVERY=60 npm run soak
//
// Connections are spread over rooms of 50 members; each push goes to one
// room, round robin (200 pushes/s x 50 = 10,000 deliveries/s: what two
// cores sustain with the servers and all clients on one machine). The slow
// consumer is in every room and reads one chunk every 2 seconds.
//
// Every process runs on 127.0.0.1; every loop is bounded by the duration.
// Prints delivered/expected per client outside outage windows, heap and
// handles of both instances over time, and exits 1 if messages outside
// outage windows went missing or memory or handles kept growing.
import { fork, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'

const SELF = fileURLToPath(import.meta.url)
// About half a kilobyte a message, so the never-reading client fills its socket buffers within minutes.
const PAD = 'x'.repeat(400)
const role = process.argv[2] ?? 'main'

if (role === 'instance') await runInstance(process.argv[3])
else if (role === 'clients') await runClients(JSON.parse(process.argv[3]))
else await runMain()

async function runInstance (redis) {
  const { default: Fastify } = await import('fastify')
  const { default: realtime } = await import('../dist/lib/index.js')
  const app = Fastify()
  await app.register(realtime, { redis, heartbeat: { interval: 10_000, timeout: 5_000 }, maxBufferedBytes: 256 * 1024 })
  const ns = app.ws('/soak', {
    onOpen: (conn) => conn.join(conn.query.all === '1'
      ? Array.from({ length: Number(conn.query.rooms) }, (_, r) => `r${r}`)
      : `r${conn.query.room}`)
  })
  app.realtime.on('broker:down', () => process.send({ kind: 'broker', status: 'down', at: Date.now() }))
  app.realtime.on('broker:up', () => process.send({ kind: 'broker', status: 'up', at: Date.now() }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  let timer
  process.on('message', (message) => {
    if (message.kind === 'publish') {
      let seq = 0
      const roomSeqs = new Array(message.rooms).fill(0)
      const started = Date.now()
      const tick = () => {
        const due = Math.floor((Date.now() - started) * message.rate / 1000)
        const batch = []
        while (seq < due && seq < message.total) {
          const room = seq % message.rooms
          const at = Date.now()
          ns.to(`r${room}`).emit('tick', { room, seq: roomSeqs[room]++, at, pad: PAD }).catch(() => {})
          batch.push(at)
          seq++
        }
        if (batch.length > 0) process.send({ kind: 'published', batch })
        if (seq < message.total) timer = setTimeout(tick, 5)
      }
      tick()
    } else if (message.kind === 'stop') {
      clearTimeout(timer)
      app.close().then(() => process.exit(0))
    }
  })
  setInterval(() => {
    global.gc?.()
    const memory = process.memoryUsage()
    process.send({
      kind: 'sample',
      heap: memory.heapUsed,
      rss: memory.rss,
      handles: process.getActiveResourcesInfo().length,
      connections: app.realtime.connectionCount,
      slowConsumersClosed: app.realtime.slowConsumersClosed,
      stats: app.realtime.broker.stats
    })
  }, 10_000).unref()
  process.send({ kind: 'ready', port: app.server.address().port })
}

async function runClients ({ ports, count, slow, first, rooms }) {
  const { default: WebSocket } = await import('ws')
  const clients = []
  for (let i = 0; i < count; i++) {
    const room = (first + i) % rooms
    const query = slow && i === 0 ? `all=1&rooms=${rooms}` : `room=${room}`
    const ws = new WebSocket(`ws://127.0.0.1:${ports[i % ports.length]}/soak?${query}`)
    // Gaps as [first, last] ranges: an outage is one range, not thousands of numbers.
    const client = { room, gaps: [], last: -1, disordered: 0, closeCode: undefined }
    clients.push(client)
    ws.on('message', (data) => {
      const seq = JSON.parse(data).data.seq
      if (seq <= client.last) {
        client.disordered++
        return
      }
      if (seq > client.last + 1) client.gaps.push([client.last + 1, seq - 1])
      client.last = seq
    })
    ws.on('close', (code) => { client.closeCode = code })
    ws.on('error', () => {})
    await once(ws, 'open')
    if (slow && i === 0) {
      // Slow, not dead: it reads one chunk every 2 s, which answers the
      // heartbeat's pings but falls behind the ~90 KB/s it is sent.
      const socket = ws._socket
      socket.pause()
      let waiting = false
      const reader = setInterval(() => {
        if (waiting) return
        waiting = true
        socket.once('data', () => { waiting = false; socket.pause() })
        socket.resume()
      }, 2000)
      reader.unref()
      ws.on('close', () => clearInterval(reader))
    }
  }
  process.send({ kind: 'connected' })
  process.on('message', (message) => {
    if (message.kind === 'report') {
      process.send({
        kind: 'report',
        clients: clients.map((c, i) => ({
          room: c.room,
          gaps: c.last < message.totals[c.room] - 1 ? [...c.gaps, [c.last + 1, message.totals[c.room] - 1]] : c.gaps,
          disordered: c.disordered,
          closeCode: c.closeCode,
          slow: slow && i === 0
        }))
      })
    }
  })
}

async function runMain () {
  const minutes = Number(process.env.SOAK_MINUTES ?? 10)
  const connections = Number(process.env.SOAK_CONNECTIONS ?? 5000)
  const rate = Number(process.env.SOAK_RATE ?? 200)
  const restartEvery = Number(process.env.SOAK_RESTART_EVERY ?? 180) * 1000
  const clientProcesses = Math.max(1, Math.ceil(connections / 1250))
  const rooms = Math.max(1, Math.ceil(connections / 50))
  const redisPort = await freePort()
  const redisArgs = ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']
  let redis = await startRedis(redisArgs, redisPort)
  const redisUrl = `redis://127.0.0.1:${redisPort}`
  const outages = []
  const instances = await Promise.all([0, 1].map(async (index) => {
    const child = fork(SELF, ['instance', redisUrl], { execArgv: ['--expose-gc'] })
    const samples = []
    child.on('message', (message) => {
      if (message.kind === 'sample') samples.push(message)
      if (message.kind === 'broker') {
        if (message.status === 'down') outages.push({ instance: index, down: message.at, up: Infinity })
        else { const open = outages.findLast((o) => o.instance === index && o.up === Infinity); if (open) open.up = message.at }
      }
    })
    const [ready] = await once(child, 'message')
    return { child, port: ready.port, samples }
  }))
  const ports = instances.map((instance) => instance.port)
  // published[room][seq] = when it was published
  const published = Array.from({ length: rooms }, () => [])
  let publishedCount = 0
  instances[0].child.on('message', (message) => {
    if (message.kind !== 'published') return
    for (const at of message.batch) published[publishedCount++ % rooms].push(at)
  })
  const clientChildren = []
  for (let i = 0; i < clientProcesses; i++) {
    const count = Math.min(1250, connections - i * 1250)
    const child = fork(SELF, ['clients', JSON.stringify({ ports, count, slow: i === 0, first: i * 1250, rooms })])
    await once(child, 'message')
    clientChildren.push(child)
  }
  console.log(`soak: ${connections} connections (1 slow) in ${rooms} rooms, ${rate} pushes/s for ${minutes} min, Redis restarted every ${restartEvery / 1000} s`)
  const total = Math.floor(minutes * 60 * rate)
  const started = Date.now()
  instances[0].child.send({ kind: 'publish', rate, total, rooms })
  let restarts = 0
  while (Date.now() - started < minutes * 60_000) {
    const wait = Math.min(restartEvery, minutes * 60_000 - (Date.now() - started))
    await new Promise((resolve) => setTimeout(resolve, wait))
    if (Date.now() - started >= minutes * 60_000 - 5_000) break
    redis.kill('SIGKILL')
    await once(redis, 'exit')
    await new Promise((resolve) => setTimeout(resolve, 2000))
    redis = await startRedis(redisArgs, redisPort)
    restarts++
    console.log(`  ${((Date.now() - started) / 1000).toFixed(0)} s: Redis restarted (${restarts})`)
  }
  // Let the last pushes land.
  // eslint-disable-next-line no-unmodified-loop-condition -- counted by the publishing instance's message listener
  while (publishedCount < total && Date.now() - started < minutes * 60_000 + 30_000) await new Promise((resolve) => setTimeout(resolve, 200))
  await new Promise((resolve) => setTimeout(resolve, 2000))
  const reports = await Promise.all(clientChildren.map(async (child) => {
    child.send({ kind: 'report', totals: published.map((list) => list.length) })
    const [report] = await once(child, 'message')
    return report.clients
  }))
  const clients = reports.flat()
  // A push is "in an outage" for instance B's clients if it was published while any instance's broker was down (plus 1 s).
  const inOutage = (at) => outages.some((o) => at >= o.down - 1000 && at <= o.up + 1000)
  let expected = 0
  let delivered = 0
  let disordered = 0
  let missingOutside = 0
  let slowClose
  const outsideOutages = published.map((list) => list.filter((at) => !inOutage(at)).length)
  for (const client of clients) {
    if (client.slow) { slowClose = client.closeCode; continue }
    disordered += client.disordered
    expected += outsideOutages[client.room]
    let missing = 0
    for (const [first, last] of client.gaps) {
      for (let seq = first; seq <= last; seq++) if (!inOutage(published[client.room][seq])) missing++
    }
    missingOutside += missing
    delivered += outsideOutages[client.room] - missing
  }
  console.log(`pushes: ${publishedCount}; restarts: ${restarts}; outage windows: ${outages.length}`)
  console.log(`outside outages: delivered ${delivered} / expected ${expected} (${(100 * delivered / Math.max(expected, 1)).toFixed(3)} %), out of order: ${disordered}`)
  const slowClosed = instances.reduce((sum, instance) => sum + (instance.samples.at(-1)?.slowConsumersClosed ?? 0), 0)
  console.log(`slow consumers closed by the server (4001): ${slowClosed}; the slow client saw: ${slowClose ?? 'no close yet'}`)
  let growing = false
  for (const [index, instance] of instances.entries()) {
    const s = instance.samples
    if (s.length < 3) continue
    const third = Math.max(1, Math.floor(s.length / 3))
    const avg = (list, key) => list.reduce((sum, x) => sum + x[key], 0) / list.length
    const early = s.slice(0, third)
    const late = s.slice(-third)
    const heapGrowth = avg(late, 'heap') - avg(early, 'heap')
    const handleGrowth = avg(late, 'handles') - avg(early, 'handles')
    console.log(`instance ${index}: heap ${mb(s[0].heap)} -> ${mb(s.at(-1).heap)} MB, rss ${mb(s[0].rss)} -> ${mb(s.at(-1).rss)} MB, handles ${s[0].handles} -> ${s.at(-1).handles}`)
    console.log(`  heap over time (MB): ${s.map((x) => mb(x.heap)).join(' ')}`)
    if (heapGrowth > 30 * 1024 * 1024 || handleGrowth > 50) growing = true
  }
  for (const child of clientChildren) child.kill()
  for (const instance of instances) instance.child.send({ kind: 'stop' })
  await Promise.all(instances.map((instance) => once(instance.child, 'exit')))
  redis.kill('SIGKILL')
  const failed = missingOutside > 0 || disordered > 0 || growing
  console.log(failed ? 'soak: FAILED' : 'soak: passed')
  process.exit(failed ? 1 : 0)
}

function mb (bytes) {
  return (bytes / 1024 / 1024).toFixed(1)
}

async function freePort () {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address()
  server.close()
  return port
}

async function startRedis (args, port) {
  for (let attempt = 0; attempt < 50; attempt++) {
    const child = spawn('redis-server', args, { stdio: 'ignore' })
    const { default: Redis } = await import('ioredis')
    for (let i = 0; i < 40; i++) {
      const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
      probe.on('error', () => {})
      try {
        await probe.connect()
        await probe.ping()
        probe.disconnect()
        return child
      } catch {
        probe.disconnect()
        if (child.exitCode !== null) break
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
    child.kill('SIGKILL')
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  throw new Error('redis-server did not start')
}
