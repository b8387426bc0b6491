import { chatPage } from './page-layout.js'

/**
 * The example's page: a chat written against the bare browser WebSocket,
 * speaking the protocol of docs/protocol.md with no client library.
 */
export const PAGE = chatPage('fastify-realtime chat', `<script>
  let socket
  let nextId = 1
  const pending = new Map()

  // A request: {type, data, id}; the server answers {type:"reply"|"error", id}.
  function request (type, data) {
    const id = 'r' + nextId++
    socket.send(JSON.stringify({ type, data, id }))
    return new Promise((resolve, reject) => pending.set(id, { resolve, reject }))
  }

  function connect (user) {
    if (socket) socket.close(1000)
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:'
    socket = new WebSocket(scheme + '//' + location.host + '/chat?token=' + encodeURIComponent('demo-' + user))
    $('state').textContent = 'connecting'
    socket.onopen = () => { $('state').textContent = 'connected as ' + user; show('connected as ' + user, 'sys') }
    socket.onclose = (event) => { $('state').textContent = 'disconnected (' + event.code + ')'; show('disconnected: ' + event.code, 'sys') }
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data)
      if (message.type === 'reply' || message.type === 'error') {
        const waiter = pending.get(message.id)
        pending.delete(message.id)
        if (message.type === 'error') {
          show('error ' + message.error.code + ': ' + message.error.message, 'err')
          if (waiter) waiter.reject(message.error)
        } else if (waiter) {
          waiter.resolve(message.data)
        }
      } else if (message.type === 'said') {
        show('[' + message.data.room + '] ' + message.data.from + ': ' + message.data.text)
      } else if (message.type === 'notification') {
        show('notification: ' + message.data.text, 'note')
      }
    }
  }

  $('login').onsubmit = (event) => { event.preventDefault(); connect($('user').value.trim()) }
  $('joinForm').onsubmit = async (event) => {
    event.preventDefault()
    const room = $('room').value.trim()
    try { await request('join', { room }); show('joined ' + room, 'sys') } catch {}
  }
  $('sayForm').onsubmit = async (event) => {
    event.preventDefault()
    const room = $('room').value.trim()
    const text = $('text').value
    if (!text) return
    try {
      await request('say', { room, text })
      show('[' + room + '] me: ' + text)
      $('text').value = ''
    } catch {}
  }
</script>`)
