/**
 * What the example's two chat pages share: the markup and the styles.
 * and two helpers (`$` by id, `show` a log line). Each page brings its own
 * script; the element ids are the same in both.
 */
export function chatPage (title: string, script: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
  form { display: flex; gap: .5rem; margin: .5rem 0; }
  input { flex: 1; padding: .4rem; }
  #log { border: 1px solid #ccc; height: 20rem; overflow-y: auto; padding: .5rem; background: #fafafa; }
  #log div { margin: .15rem 0; }
  .sys { color: #777; } .err { color: #b00; } .note { color: #064; }
  #state { font-weight: bold; }
</style>
</head>
<body>
<h1>${title}</h1>
<p>Status: <span id="state">disconnected</span></p>
<form id="login"><input id="user" placeholder="your name (letters, digits, -)" value="" autocomplete="off"><button>Connect</button></form>
<form id="joinForm"><input id="room" placeholder="room" value="lobby"><button>Join</button></form>
<div id="log" aria-live="polite"></div>
<form id="sayForm"><input id="text" placeholder="message" autocomplete="off"><button>Send</button></form>
<script>
  const $ = (id) => document.getElementById(id)

  function show (text, cls) {
    const line = document.createElement('div')
    line.textContent = text
    if (cls) line.className = cls
    $('log').append(line)
    $('log').scrollTop = $('log').scrollHeight
  }
</script>
${script}
</body>
</html>
`
}
