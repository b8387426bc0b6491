// Opens many WebSocket clients from a process of their own (file
// descriptors and CPU stay out of the server's process):
//   node many-clients.mjs <url> <count>
// Prints {"open": N} once all are open. Counts the frames each client
// receives until a frame containing "done" (the sentinel), then, once every
// client has its sentinel, prints {"received": total, "wrong": clients
// that did not get exactly one}. Closing stdin ends it.
import WebSocket from 'ws'

const [url, countText] = process.argv.slice(2)
const count = Number(countText)
const received = new Array(count).fill(0)
let open = 0
const sockets = []
for (let i = 0; i < count; i++) {
  const ws = new WebSocket(url)
  sockets.push(ws)
  ws.on('error', () => {})
  ws.on('open', () => {
    if (++open === count) process.stdout.write(JSON.stringify({ open }) + '\n')
  })
  ws.on('message', (data) => {
    if (String(data).includes('"done"')) {
      // The sentinel: everything sent before it has arrived on this socket.
      received[i] = -received[i] - 1
      if (received.every((n) => n < 0)) {
        const counts = received.map((n) => -n - 1)
        process.stdout.write(JSON.stringify({
          received: counts.reduce((a, b) => a + b, 0),
          wrong: counts.filter((n) => n !== 1).length
        }) + '\n')
      }
    } else {
      received[i]++
    }
  })
}
process.stdin.on('end', () => { for (const ws of sockets) ws.terminate(); process.exit(0) })
process.stdin.resume()
