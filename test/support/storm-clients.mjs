// Reconnect storm clients: node storm-clients.mjs <first url> <fallback url> <count>
// Each client joins `room` on the first URL; when that connection drops it
// reconnects to the fallback after a random delay (full jitter, up to 500 ms),
// once. Prints {"open": N} when all are open on the first URL, then
// {"admitted": n, "refused": {status: count}} once every client has an answer.
import WebSocket from 'ws'

const [first, fallback, countText] = process.argv.slice(2)
const count = Number(countText)
let open = 0
let settled = 0
let admitted = 0
const refused = {}
const sockets = []

function settle () {
  if (++settled === count) process.stdout.write(JSON.stringify({ admitted, refused }) + '\n')
}

function join (ws) {
  ws.send(JSON.stringify({ type: 'join', data: { room: 'room' }, id: 1 }))
}

for (let i = 0; i < count; i++) {
  const ws = new WebSocket(`${first}?user=storm-${i}`)
  sockets.push(ws)
  ws.on('error', () => {})
  ws.once('open', () => {
    join(ws)
    if (++open === count) process.stdout.write(JSON.stringify({ open }) + '\n')
  })
  ws.once('close', () => {
    setTimeout(() => {
      const again = new WebSocket(`${fallback}?user=storm-${i}`)
      sockets.push(again)
      again.on('error', () => {})
      again.once('open', () => { admitted++; join(again); settle() })
      again.once('unexpected-response', (_request, response) => {
        refused[response.statusCode] = (refused[response.statusCode] ?? 0) + 1
        response.resume()
        again.terminate()
        settle()
      })
    }, Math.random() * 500)
  })
}
process.stdin.on('end', () => { for (const ws of sockets) ws.terminate(); process.exit(0) })
process.stdin.resume()
