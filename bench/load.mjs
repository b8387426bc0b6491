// The load generator, in its own process: `node bench/load.mjs`, driven
// over IPC by bench/run.mjs. Every loop is bounded by a count and a time.
import { eventData, open } from './clients.mjs'
import { now, quantile, TEXT } from './support.mjs'

const clients = []

/** Asks the orchestrator something and waits for its answer (a CPU mark, a go). */
function ask (what) {
  return new Promise((resolve) => {
    const onMessage = (message) => {
      if (message.answer !== what) return
      process.off('message', onMessage)
      resolve(message)
    }
    process.on('message', onMessage)
    process.send({ ask: what })
  })
}

/** Opens `n` clients (light or `ws`), `concurrency` opening at a time. */
async function openMany (url, protocol, n, concurrency = 100, kind = 'light') {
  let next = 0
  const opened = []
  async function worker () {
    while (next < n) {
      next++
      opened.push(await open(url, protocol, kind))
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker))
  clients.push(...opened)
  return opened
}

function summary (latenciesMs) {
  const sorted = latenciesMs.sort((a, b) => a - b)
  return { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) }
}

const jobs = {
  /** One connection, `count` sequential round trips. */
  async echoLatency ({ url, protocol, count, deadlineMs }) {
    const [client] = await openMany(url, protocol, 1)
    const latencies = []
    const stop = Date.now() + deadlineMs
    for (let seq = 0; seq < count + 500 && Date.now() < stop; seq++) {
      const start = performance.now()
      await client.request('echo', { seq, text: TEXT })
      // The first 500 warm the JIT and are not counted.
      if (seq >= 500) latencies.push(performance.now() - start)
    }
    return { ...summary(latencies), count: latencies.length }
  },

  /** `connections` × `inFlight` outstanding echoes for `seconds`: round trips per second. */
  async echoThroughput ({ url, protocol, connections, inFlight, seconds }) {
    const opened = await openMany(url, protocol, connections)
    let counting = false
    let done = 0
    let stopAt = Infinity
    const loops = []
    const warmUntil = Date.now() + 1000
    for (const client of opened) {
      for (let lane = 0; lane < inFlight; lane++) {
        loops.push((async () => {
          let seq = 0
          while (Date.now() < stopAt) {
            await client.request('echo', { seq: seq++, text: TEXT })
            if (counting) done++
          }
        })())
      }
    }
    // Warm up, then count over the window the orchestrator reads the server's CPU across.
    await new Promise((resolve) => setTimeout(resolve, warmUntil - Date.now()))
    await ask('mark')
    const start = performance.now()
    counting = true
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000))
    counting = false
    const elapsed = (performance.now() - start) / 1000
    const counted = done
    await ask('mark')
    stopAt = 0
    await Promise.all(loops)
    return { roundTripsPerSecond: counted / elapsed, roundTrips: counted }
  },

  /**
   * `n` members of `room`, then waits for `expected` ticks each (or the
   * deadline) broadcast by the server: latency from the server's stamp to
   * arrival on sampled members, deliveries, and deliveries per second from
   * the first stamp.
   */
  async members ({ url, protocol, n, room, expected, sample, deadlineMs }) {
    const opened = await openMany(url, protocol, n)
    await Promise.all(opened.map((client) => client.join(room)))
    const counted = count(opened, protocol, expected, sample)
    await ask('members ready')
    return counted.result(deadlineMs)
  },

  /**
   * The same with a real `ws` client per member, the ticks sent by a
   * publisher connection (`ticks` at `rate` per second, stamped as it sends
   * them) that the server broadcasts to the room: latency from the
   * publisher's stamp to arrival; the orchestrator reads the server's CPU
   * before the first tick and after the last delivery (or the deadline).
   */
  async published ({ url, protocol, n, room, ticks, rate, sample, deadlineMs }) {
    const opened = await openMany(url, protocol, n, 100, 'ws')
    await Promise.all(opened.map((client) => client.join(room)))
    const [publisher] = await openMany(url, protocol, 1, 1, 'ws')
    const counted = count(opened, protocol, ticks, sample)
    await ask('mark')
    const start = now()
    for (let seq = 0; seq < ticks; seq++) {
      const wait = start + seq * 1000 / rate - now()
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
      publisher.emit('publish', { room, seq, t: now(), text: TEXT })
    }
    const result = await counted.result(deadlineMs)
    await ask('mark')
    return result
  },

  /**
   * `n` members spread over `urls` (connection i on instance i mod k) and
   * `rooms` rooms (connection i in room floor(i / k) mod rooms, so every
   * room has members on every instance); then waits for `expected`
   * deliveries in all (or the deadline) between two marks of the orchestrator.
   */
  async spread ({ urls, protocol, n, rooms, expected, deadlineMs }) {
    const opened = []
    for (let i = 0; i < urls.length; i++) {
      const count = Math.floor(n / urls.length) + (i < n % urls.length ? 1 : 0)
      opened.push(...(await openMany(urls[i], protocol, count)).map((client, j) => ({ client, index: j * urls.length + i })))
    }
    await Promise.all(opened.map(({ client, index }) => client.join(`r${Math.floor(index / urls.length) % rooms}`)))
    let delivered = 0
    let finish
    const finished = new Promise((resolve) => { finish = resolve })
    for (const { client } of opened) {
      client.onEvent = () => {
        if (++delivered === expected) finish()
      }
    }
    await ask('mark')
    const timer = setTimeout(finish, deadlineMs)
    await finished
    clearTimeout(timer)
    await ask('mark')
    return { delivered, expected }
  },

  /** Opens `n` idle connections: connections opened per second; they stay open until `close`. */
  async idle ({ url, protocol, n }) {
    const start = performance.now()
    await openMany(url, protocol, n, 200)
    const connectionsPerSecond = n / ((performance.now() - start) / 1000)
    // The orchestrator reads the server's memory while every connection is open.
    await ask('opened')
    return { opened: n, connectionsPerSecond }
  },

  /**
   * Opens `n` connections, `window` opening at a time, between two CPU marks
   * of the orchestrator: connections accepted (upgraded) per second; then
   * closes them all.
   */
  async accept ({ url, protocol, n, window }) {
    await ask('mark')
    const start = performance.now()
    const opened = await openMany(url, protocol, n, window)
    const acceptsPerSecond = n / ((performance.now() - start) / 1000)
    await ask('mark')
    for (const client of opened) client.close()
    clients.length = 0
    return { accepted: opened.length, acceptsPerSecond }
  }
}

/**
 * Counts the ticks `members` receive, `expected` each: the latency of
 * about `sample` of them (arrival minus the tick's stamp), deliveries, and
 * deliveries per second from the first stamp to the last arrival.
 */
function count (members, protocol, expected, sample) {
  const n = members.length
  let delivered = 0
  let firstStamp = Infinity
  let lastArrival = 0
  const latencies = []
  const total = n * expected
  let finish
  const finished = new Promise((resolve) => { finish = resolve })
  members.forEach((client, index) => {
    const sampled = index % Math.max(1, Math.floor(n / sample)) === 0
    client.onEvent = (frame) => {
      const arrival = now()
      delivered++
      lastArrival = arrival
      if (sampled) {
        const { t } = eventData(protocol, frame)
        latencies.push(arrival - t)
        if (t < firstStamp) firstStamp = t
      }
      if (delivered === total) finish()
    }
  })
  return {
    /** Resolves once every delivery has arrived or the deadline passed. */
    async result (deadlineMs) {
      const timer = setTimeout(finish, deadlineMs)
      await finished
      clearTimeout(timer)
      return { ...summary(latencies), delivered, expected: total, deliveriesPerSecond: delivered / ((lastArrival - firstStamp) / 1000) }
    }
  }
}

process.on('message', async (message) => {
  if (message.cmd === 'close') process.disconnect()
  if (message.job === undefined) return
  try {
    process.send({ result: await jobs[message.job](message) })
  } catch (err) {
    process.send({ error: String(err?.stack ?? err) })
  }
})
process.on('disconnect', () => {
  for (const client of clients) client.close()
  process.exit(0)
})
