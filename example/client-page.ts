import { chatPage } from './page-layout.js'

/**
 * The example's second page: the same chat as `/`, written with
 * `fastify-realtime/client` (served by the example under `/client/`). It
 * reconnects by itself, rejoins its rooms and keeps sends made while offline.
 */
export const CLIENT_PAGE = chatPage('fastify-realtime chat, with the client', `<script type="module">
  import { connect } from '/client/index.js'

  let client

  $('login').onsubmit = (event) => {
    event.preventDefault()
    const user = $('user').value.trim()
    if (client) client.close()
    // A path is resolved against the page: ws(s)://<this host>/chat. The token is asked for on every attempt.
    client = connect('/chat', { token: () => 'demo-' + user })
    $('state').textContent = client.state
    client.on('state', (state, info) => {
      $('state').textContent = state
      if (state === 'open') show('connected as ' + user, 'sys')
      else show(state + (info.code ? ' (' + info.code + ')' : ''), 'sys')
    })
    client.on('said', (d) => show('[' + d.room + '] ' + d.from + ': ' + d.text))
    client.on('notification', (d) => show('notification: ' + d.text, 'note'))
    client.on('error', (err) => show('error ' + err.code + ': ' + err.message, 'err'))
  }

  $('joinForm').onsubmit = async (event) => {
    event.preventDefault()
    const room = $('room').value.trim()
    try {
      // Joins are replayed after every reconnect.
      await client.request('join', { room })
      show('joined ' + room, 'sys')
    } catch (err) {
      show('error ' + err.code + ': ' + err.message, 'err')
    }
  }

  $('sayForm').onsubmit = async (event) => {
    event.preventDefault()
    const room = $('room').value.trim()
    const text = $('text').value
    if (!text) return
    $('text').value = ''
    try {
      await client.request('say', { room, text })
      show('[' + room + '] me: ' + text)
    } catch (err) {
      show('error ' + err.code + ': ' + err.message, 'err')
    }
  }
</script>`)
