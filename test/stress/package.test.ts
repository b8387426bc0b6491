import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { test } from 'tap'
import type { TestContext } from '../helper.js'
import { redisFor } from '../support/redis.js'

/*
 * What a newcomer meets: the packed tarball installed into an empty project
 * exactly as README.md's Install section says, run with node, type-checked
 * with tsc from the package's own declarations, and the tarball's file list.
 * Slow (npm installs, two full tsc runs without skipLibCheck): each case
 * prints its wall time.
 */

t.setTimeout(20 * 60_000)

const root = fileURLToPath(new URL('../../', import.meta.url))
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }
const NPM_INSTALL = ['install', '--no-audit', '--no-fund', '--prefer-offline']
const CHILD_TIMEOUT = 5 * 60_000

interface Run { code: number, stdout: string, stderr: string }

/** Runs a command to its end; never rejects on a non-zero exit (the caller asserts `code`). */
function run (command: string, args: string[], cwd: string, timeout = CHILD_TIMEOUT): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, timeout, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, NODE_OPTIONS: '' } },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1
        resolve({ code, stdout, stderr: error !== null && error.killed ? `${stderr}\n(killed: ${error.signal})` : stderr })
      })
  })
}

/** Runs and asserts a zero exit, with the whole output as the diagnostic when it is not. */
async function ok (tt: TestContext, command: string, args: string[], cwd: string): Promise<Run> {
  const result = await run(command, args, cwd)
  tt.equal(result.code, 0, `${command} ${args.join(' ')}`, { stdout: result.stdout, stderr: result.stderr })
  return result
}

/** The JSON lines a consumer script printed, in order. */
function lines (stdout: string): Array<Record<string, unknown>> {
  return stdout.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>)
}

/** Wall time of a case, printed as a comment in the TAP output. */
function timed (tt: TestContext): void {
  const start = performance.now()
  tt.teardown(() => { t.comment(`${tt.name}: ${((performance.now() - start) / 1000).toFixed(1)} s`) })
}

/** The packages README.md's Install section installs, first line (the plugin's own name left out) and second. */
function readmeInstall (): { base: string[], redis: string[] } {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const block = /^## Install\n+```sh\n([\s\S]*?)```/m.exec(readme)![1]!
  const installs = block.split('\n').filter((line) => line.startsWith('npm install '))
    .map((line) => line.replace(/#.*$/, '').trim().split(/\s+/).slice(2))
  return { base: installs[0]!.filter((name) => name !== 'fastify-realtime'), redis: installs[1]! }
}

/** The README's Quick start, verbatim, after a declaration of the one function it leaves to the reader. */
function readmeQuickStart (): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const block = /^## Quick start\n+```ts\n([\s\S]*?)```/m.exec(readme)![1]!
  // The README declares what it leaves to the reader (verifyToken); a copy compiles as it is.
  return block
}

// Built once if missing; `npm pack --ignore-scripts` then packs what dist/ holds (npm test builds first).
if (!existsSync(join(root, 'dist/lib/index.js'))) {
  const build = await run('npm', ['run', 'build'], root)
  if (build.code !== 0) throw new Error(`npm run build failed:\n${build.stdout}\n${build.stderr}`)
}

const work = mkdtempSync(join(tmpdir(), 'fastify-realtime-package-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))
const project = join(work, 'project')

const SERVER_SCRIPT = `
import { once } from 'node:events'
import Fastify from 'fastify'
import realtime from 'fastify-realtime'
import { connect } from 'fastify-realtime/client'
import { Type } from 'typebox'
import WebSocket from 'ws'

const app = Fastify()
await app.register(realtime)
app.ws('/chat', {
  messages: {
    say: {
      data: Type.Object({ text: Type.String({ maxLength: 10 }) }),
      reply: Type.Object({ shout: Type.String() }),
      handler: (conn, { text }) => ({ shout: text.toUpperCase() })
    }
  }
})
await app.listen({ port: 0, host: '127.0.0.1' })
const url = 'ws://127.0.0.1:' + app.server.address().port + '/chat'

const ws = new WebSocket(url)
await once(ws, 'open')
const frames = []
ws.on('message', (raw) => frames.push(JSON.parse(String(raw))))
ws.send(JSON.stringify({ type: 'say', data: { text: 'hi' }, id: 1 }))
ws.send(JSON.stringify({ type: 'say', data: { text: 42 }, id: 2 }))
while (frames.length < 2) await once(ws, 'message')
for (const frame of frames) console.log(JSON.stringify({ ws: frame }))
ws.close()

const client = connect(url, { WebSocket })
console.log(JSON.stringify({ client: await client.request('say', { text: 'typed' }) }))
client.close()
await app.close()
console.log(JSON.stringify({ closed: true }))
`

const NO_IOREDIS_SCRIPT = `
import Fastify from 'fastify'
import realtime from 'fastify-realtime'

console.log(JSON.stringify({ plugin: typeof realtime }))
try {
  await import('fastify-realtime/redis')
  console.log(JSON.stringify({ redisEntry: 'loaded' }))
} catch (err) {
  console.log(JSON.stringify({ redisEntry: { code: err.code, message: err.message } }))
}
const app = Fastify()
try {
  await app.register(realtime, { redis: 'redis://127.0.0.1:1' })
  console.log(JSON.stringify({ register: 'ok' }))
} catch (err) {
  console.log(JSON.stringify({ register: { code: err.code, message: err.message } }))
}
await app.close().catch(() => {})
`

const REDIS_SCRIPT = `
import { once } from 'node:events'
import Fastify from 'fastify'
import realtime from 'fastify-realtime'
import { RealtimeEmitter } from 'fastify-realtime/redis'
import { Type } from 'typebox'
import WebSocket from 'ws'

const redis = process.argv[2]
const said = Type.Object({ text: Type.String() })

async function instance () {
  const app = Fastify()
  await app.register(realtime, { redis })
  app.ws('/chat', {
    messages: {
      join: { data: Type.Object({ room: Type.String() }), handler: (conn, { room }) => conn.join(room) }
    },
    events: { said }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return app
}

const one = await instance()
const two = await instance()

const ws = new WebSocket('ws://127.0.0.1:' + two.server.address().port + '/chat')
await once(ws, 'open')
const frames = []
ws.on('message', (raw) => frames.push(JSON.parse(String(raw))))
async function next () {
  while (frames.length === 0) await once(ws, 'message')
  return frames.shift()
}
ws.send(JSON.stringify({ type: 'join', data: { room: 'lobby' }, id: 1 }))
console.log(JSON.stringify({ joined: await next() }))

await one.realtime.namespace('/chat').to('lobby').emit('said', { text: 'from instance one' })
console.log(JSON.stringify({ acrossInstances: await next() }))

const emitter = new RealtimeEmitter({ redis })
await emitter.namespace('/chat').to('lobby').emit('said', { text: 'from the emitter' })
console.log(JSON.stringify({ fromEmitter: await next() }))

await emitter.close()
ws.close()
await Promise.all([one.close(), two.close()])
console.log(JSON.stringify({ closed: true }))
`

test('npm pack, and an empty project installs the tarball with only the packages README.md names', async (t) => {
  timed(t)
  const packed = await ok(t, 'npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], root)
  const [{ filename }] = JSON.parse(packed.stdout) as [{ filename: string }]
  await ok(t, 'mkdir', ['-p', project], work)
  await ok(t, 'npm', ['init', '-y'], project)
  await ok(t, 'npm', ['pkg', 'set', 'type=module'], project)
  const { base } = readmeInstall()
  t.same(base.toSorted(), ['fastify', 'typebox'], 'README.md: npm install fastify-realtime fastify typebox')
  const install = await ok(t, 'npm', [...NPM_INSTALL, join(work, filename), ...base], project)
  t.comment(install.stderr.trim())
  const { dependencies } = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }
  t.same(Object.keys(dependencies).sort(), ['fastify', 'fastify-realtime', 'typebox'])
  t.notOk(existsSync(join(project, 'node_modules/ioredis')), 'ioredis is not installed')
  t.ok(existsSync(join(project, 'node_modules/ws')), 'ws comes with the plugin')
})

test('without ioredis: a typed route answers a ws client and the typed client', async (t) => {
  timed(t)
  writeFileSync(join(project, 'server.mjs'), SERVER_SCRIPT)
  const { stdout } = await ok(t, 'node', ['server.mjs'], project)
  const [reply, error, ...rest] = lines(stdout)
  t.same(reply, { ws: { type: 'reply', id: 1, data: { shout: 'HI' } } }, 'the reply, typed by its schema')
  t.match(error, { ws: { type: 'error', id: 2, error: { code: 'VALIDATION_FAILED', details: Array } } }, 'invalid data: an error frame')
  t.same(rest, [{ client: { shout: 'TYPED' } }, { closed: true }], 'fastify-realtime/client, with ws, gets its reply')
})

test('without ioredis: fastify-realtime loads; fastify-realtime/redis fails naming ioredis', async (t) => {
  timed(t)
  writeFileSync(join(project, 'no-ioredis.mjs'), NO_IOREDIS_SCRIPT)
  const { stdout } = await ok(t, 'node', ['no-ioredis.mjs'], project)
  const [plugin, redisEntry, register] = lines(stdout)
  t.same(plugin, { plugin: 'function' })
  t.match(redisEntry, { redisEntry: { code: 'ERR_MODULE_NOT_FOUND', message: /Cannot find package 'ioredis'/ } })
  t.comment(`register(realtime, { redis }) without ioredis: ${JSON.stringify(register)}`)
  t.match(register, { register: { message: /ioredis/ } }, 'the redis option without ioredis fails naming ioredis')
})

for (const [name, compilerOptions] of [
  ['nodenext', { module: 'nodenext' }],
  ['bundler', { module: 'preserve', moduleResolution: 'bundler' }]
] as const) {
  test(`the README's Quick start type-checks from the tarball: strict, skipLibCheck false, module ${name}`, async (t) => {
    timed(t)
    if (!existsSync(join(project, 'node_modules/typescript'))) {
      const dev = pkg.devDependencies
      await ok(t, 'npm', [...NPM_INSTALL, '--save-dev', `typescript@${dev.typescript}`, `@types/node@${dev['@types/node']}`], project)
      writeFileSync(join(project, 'quick-start.ts'), readmeQuickStart())
    }
    writeFileSync(join(project, `tsconfig.${name}.json`), JSON.stringify({
      compilerOptions: { target: 'ES2022', ...compilerOptions, types: ['node'], strict: true, skipLibCheck: false, noEmit: true },
      files: ['quick-start.ts']
    }, null, 2))
    const tsc = await run(join(project, 'node_modules/.bin/tsc'), ['-p', `tsconfig.${name}.json`], project)
    // tsc prints its errors on stdout: shown verbatim, and one per line in the diff, as a user would see them.
    if (tsc.stdout !== '') t.comment(`tsc -p tsconfig.${name}.json:\n${tsc.stdout}`)
    const errors = tsc.stdout.split('\n').filter((line) => / error TS\d+:/.test(line))
    const inPackage = (line: string): boolean => line.startsWith('node_modules/fastify-realtime/')
    t.same(errors.filter(inPackage), [], `tsc -p tsconfig.${name}.json: no error in the package's declarations`)
    t.same(errors.filter((line) => !inPackage(line)), [], `tsc -p tsconfig.${name}.json: no error in the Quick start or elsewhere`)
    t.equal(tsc.code, 0, 'tsc exits 0', { stderr: tsc.stderr })
  })
}

test('with ioredis: two instances share a room over Redis; RealtimeEmitter reaches a client', async (t) => {
  timed(t)
  const { redis } = readmeInstall()
  t.same(redis, ['ioredis'], 'README.md: npm install ioredis')
  await ok(t, 'npm', [...NPM_INSTALL, ...redis], project)
  const server = await redisFor(t)
  writeFileSync(join(project, 'redis.mjs'), REDIS_SCRIPT)
  const { stdout } = await ok(t, 'node', ['redis.mjs', server.url], project)
  t.same(lines(stdout), [
    { joined: { type: 'reply', id: 1, data: null } },
    { acrossInstances: { type: 'said', data: { text: 'from instance one' } } },
    { fromEmitter: { type: 'said', data: { text: 'from the emitter' } } },
    { closed: true }
  ])
})

test('npm pack --dry-run lists LICENSE, README.md, docs/ and the compiled lib/ only, maps with their sources', async (t) => {
  timed(t)
  const dry = await ok(t, 'npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], root)
  const [{ files }] = JSON.parse(dry.stdout) as [{ files: Array<{ path: string }> }]
  const paths = files.map((file) => file.path)
  t.ok(paths.includes('LICENSE'), 'LICENSE')
  t.ok(paths.includes('README.md'), 'README.md')
  t.ok(paths.includes('package.json'), 'package.json')
  const docs = readdirSync(join(root, 'docs')).map((name) => `docs/${name}`)
  t.same(paths.filter((path) => path.startsWith('docs/')).sort(), docs.sort(), 'every file of docs/')

  // Every lib/**/*.ts compiles to a .js and a .d.ts in the tarball, and nothing else is under dist/.
  const sources = walk(join(root, 'lib')).filter((path) => path.endsWith('.ts') && !path.endsWith('.d.ts'))
    .map((path) => relative(root, path).slice(0, -'.ts'.length))
  t.ok(sources.length >= 30, 'the sources are read off lib/')
  for (const source of sources) {
    t.ok(paths.includes(`dist/${source}.js`), `dist/${source}.js`)
    t.ok(paths.includes(`dist/${source}.d.ts`), `dist/${source}.d.ts`)
  }
  const fromSource = new Set(sources.flatMap((source) => ['.js', '.d.ts', '.js.map', '.d.ts.map'].map((ext) => `dist/${source}${ext}`)))
  t.same(paths.filter((path) => path.startsWith('dist/') && !fromSource.has(path)), [],
    'nothing under dist/ without a source in lib/ (a stale build: rm -rf dist && npm run build)')
  t.same(paths.filter((path) => !/^(LICENSE|README\.md|package\.json|docs\/.*|dist\/lib\/.*)$/.test(path)), [],
    'no other file (test/, bench/, example/, scripts/)')

  // The maps point at ../lib/*.ts, which is not shipped: they are only of use with the sources inlined.
  for (const path of paths.filter((path) => path.endsWith('.map'))) {
    const map = JSON.parse(readFileSync(join(root, path), 'utf8')) as { sources: string[], sourcesContent?: Array<string | null> }
    t.ok(map.sourcesContent !== undefined && map.sourcesContent.length === map.sources.length &&
      map.sourcesContent.every((content) => typeof content === 'string' && content.length > 0), `${path} has sourcesContent`)
  }
})

function walk (dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? walk(path) : [path]
  })
}
