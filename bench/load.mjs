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

async function openMany (url, protocol, n, concurrency = 100) {
  let next = 0
  const opened = []
  async function worker () {
    while (next < n) {
      next++
      opened.push(await open(url, protocol))
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
   * deadline): latency from the server's stamp to arrival on sampled
   * members, deliveries, and deliveries per second from the first stamp.
   */
  async members ({ url, protocol, n, room, expected, sample, deadlineMs }) {
    const opened = await openMany(url, protocol, n)
    await Promise.all(opened.map((client) => client.join(room)))
    let delivered = 0
    let firstStamp = Infinity
    let lastArrival = 0
    const latencies = []
    const total = n * expected
    let finish
    const finished = new Promise((resolve) => { finish = resolve })
    opened.forEach((client, index) => {
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
    await ask('members ready')
    const timer = setTimeout(finish, deadlineMs)
    await finished
    clearTimeout(timer)
    return { ...summary(latencies), delivered, expected: total, deliveriesPerSecond: delivered / ((lastArrival - firstStamp) / 1000) }
  },

  /** Opens `n` idle connections: connections opened per second; they stay open until `close`. */
  async idle ({ url, protocol, n }) {
    const start = performance.now()
    await openMany(url, protocol, n, 200)
    const connectionsPerSecond = n / ((performance.now() - start) / 1000)
    // The orchestrator reads the server's memory while every connection is open.
    await ask('opened')
    return { opened: n, connectionsPerSecond }
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
