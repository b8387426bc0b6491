// Runs many typed clients (fastify-realtime/client, built in dist/, with
// `ws`) in a process of their own, so the test process, which holds the
// servers, is not the bottleneck:
//   node typed-clients.mjs <url> <count> <initialDelay> <maxDelay>
// Prints {"open": N} once every client is open for the first time. Each
// line "report" on stdin is answered with one JSON line: how many clients
// are open now, for every client that lost its connection when (Date.now())
// it lost it, the delay its first retry drew, and when it was open again;
// and how the attempts that failed ended (HTTP status, or close code and reason). A line "ticks <n>" is
// answered with how many clients received the route's `tick` events 1..n exactly once, in order, and how
// many reconnects recovered their session. Closing stdin ends it.
import WebSocket from 'ws'
import { connect } from '../../dist/lib/client/index.js'

const [url, countText, initialDelay, maxDelay] = process.argv.slice(2)
const count = Number(countText)
const clients = []
const lostAt = new Array(count).fill(null)
const backAt = new Array(count).fill(null)
const firstDelay = new Array(count).fill(null)
const isOpen = new Array(count).fill(false)
const refusals = {}
// Every `tick` event each client received, in order (the route's broadcasts of a counter).
const ticks = Array.from({ length: count }, () => [])
let recovered = 0
let open = 0
let announced = false

for (let i = 0; i < count; i++) {
  const client = connect(url, {
    WebSocket,
    token: `user${i}`,
    reconnect: { initialDelay: Number(initialDelay), maxDelay: Number(maxDelay) }
  })
  clients.push(client)
  client.on('error', () => {})
  client.on('tick', (n) => { ticks[i].push(n) })
  client.on('state', (state, info) => {
    if (state === 'open') {
      if (info.recovered === true) recovered++
      open++
      isOpen[i] = true
      if (lostAt[i] !== null && backAt[i] === null) backAt[i] = Date.now()
      if (!announced && open === count) {
        announced = true
        process.stdout.write(JSON.stringify({ open }) + '\n')
      }
      return
    }
    if (isOpen[i]) {
      isOpen[i] = false
      open--
      if (lostAt[i] === null) {
        lostAt[i] = Date.now()
        firstDelay[i] = info.delay ?? null
      }
    }
    const key = info.status !== undefined ? String(info.status) : `${info.code} ${info.reason}`
    refusals[key] = (refusals[key] ?? 0) + 1
  })
}

let input = ''
process.stdin.setEncoding('utf8').on('data', (chunk) => {
  input += chunk
  let end
  while ((end = input.indexOf('\n')) !== -1) {
    const line = input.slice(0, end)
    input = input.slice(end + 1)
    if (line.startsWith('ticks ')) {
      // "ticks <n>": how many clients received exactly ticks 1..n, once each, in order; a few of the others.
      const last = Number(line.slice(6))
      const bad = []
      for (let c = 0; c < count; c++) {
        const got = ticks[c]
        if (got.length !== last || got.some((n, k) => n !== k + 1)) bad.push({ client: c, received: got.length, first: got[0], last: got.at(-1) })
      }
      process.stdout.write(JSON.stringify({ complete: count - bad.length, recovered, bad: bad.slice(0, 5) }) + '\n')
    } else if (line === 'report') {
      const states = {}
      for (const client of clients) states[client.state] = (states[client.state] ?? 0) + 1
      process.stdout.write(JSON.stringify({ open, states, lostAt, backAt, firstDelay, refusals }) + '\n')
    }
  }
})
process.stdin.on('end', () => {
  for (const client of clients) client.close()
  process.exit(0)
})
