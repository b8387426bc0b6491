import { once } from 'node:events'
import { connect } from 'node:net'
import { test, type Test } from 'tap'
import { Cluster, Redis, type RedisOptions } from 'ioredis'
import { redisClusterFor, redisFor, startRedis } from './support/redis.js'

/*
 * The redis-server harness the Redis tests stand on: it must start, kill,
 * restart, pause and cluster real servers, and leave nothing behind.
 */

function client (t: Test, port: number, options: RedisOptions = {}): Redis {
  const redis = new Redis({ host: '127.0.0.1', port, ...options })
  t.teardown(() => redis.disconnect())
  return redis
}

/** Whether a process with this pid exists. */
function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

test('startRedis: its own port, answers PING, SET/GET; stop() is idempotent', async (t) => {
  const server = await startRedis()
  t.teardown(() => server.stop())
  t.not(server.port, 6379)
  t.equal(server.url, `redis://127.0.0.1:${server.port}`)
  t.equal(String(await server.command('CLIENT', 'LIST')).trim().split('\n').length, 1,
    'the readiness probe and earlier command() connections are gone')
  const redis = client(t, server.port)
  t.equal(await redis.ping(), 'PONG')
  t.equal(await redis.set('key', 'value'), 'OK')
  t.equal(await redis.get('key'), 'value')
  t.match(await redis.info('server'), `\r\nprocess_id:${server.pid}\r\n`, 'the pid is the server answering')
  redis.disconnect()
  await server.stop()
  await server.stop()
  t.notOk(alive(server.pid), 'the process is gone')
})

test('startRedis: a given port and extra args', async (t) => {
  const first = await startRedis()
  t.teardown(() => first.stop())
  await first.stop()
  const server = await redisFor(t, { port: first.port, args: ['--maxmemory', '1mb'] })
  t.equal(server.port, first.port)
  t.same(await server.command('CONFIG', 'GET', 'maxmemory'), ['maxmemory', '1048576'])
})

test('startRedis: a server that cannot start rejects with its output', async (t) => {
  await t.rejects(startRedis({ args: ['--no-such-directive', 'x'] }), { message: /exited \(1\)[^]*Bad directive/ })
})

test('kill() ends the process, restart() answers again on the same port', async (t) => {
  const server = await redisFor(t)
  const { port, pid } = server
  await server.command('SET', 'key', 'value')
  await server.kill()
  t.notOk(alive(pid))
  const [refused] = await once(connect(port, '127.0.0.1'), 'error')
  t.match(refused, { code: 'ECONNREFUSED' }, 'nothing listens')

  await server.restart()
  t.equal(server.port, port)
  t.not(server.pid, pid)
  t.equal(await client(t, port).ping(), 'PONG')
  t.equal(await server.command('GET', 'key'), null, 'nothing persisted')

  const second = server.pid
  await server.restart()
  t.notOk(alive(second), 'restart() of a live server kills it first')
  await server.kill('SIGTERM')
  t.notOk(alive(server.pid), 'a graceful kill waits for the exit too')
  await server.stop()
})

test('pause() holds commands, resume() answers them', async (t) => {
  const server = await redisFor(t)
  const held = client(t, server.port)
  const watchdog = client(t, server.port, { commandTimeout: 200 })
  await held.set('key', 'value')
  await watchdog.ping()
  await server.pause()
  let settled = false
  const pending = held.get('key').finally(() => { settled = true })
  await t.rejects(watchdog.ping(), { message: /timed out/ }, 'a paused server answers nothing')
  t.notOk(settled, 'the earlier command is still held')
  await server.resume()
  t.equal(await pending, 'value', 'answered after resume')
  t.equal(await watchdog.ping(), 'PONG')
})

test('command(): PUBSUB NUMSUB, PUBLISH, CLIENT KILL TYPE pubsub, DEBUG SLEEP', async (t) => {
  const server = await redisFor(t)
  t.same(await server.command('PUBSUB', 'NUMSUB', 'x'), ['x', 0])
  const subscriber = client(t, server.port)
  await subscriber.subscribe('x')
  t.same(await server.command('PUBSUB', 'NUMSUB', 'x'), ['x', 1])
  const message = once(subscriber, 'message')
  t.equal(await server.command('PUBLISH', 'x', 'hello'), 1)
  t.same(await message, ['x', 'hello'])
  const closed = once(subscriber, 'close')
  t.equal(await server.command('CLIENT', 'KILL', 'TYPE', 'pubsub'), 1)
  await closed
  subscriber.disconnect()
  t.equal(await server.command('DEBUG', 'SLEEP', '0.1'), 'OK')
  await t.rejects(server.command('NO-SUCH-COMMAND'), { message: /unknown command/ })
})

test('startRedisCluster: keys on every master, sharded pub/sub', async (t) => {
  const cluster = await redisClusterFor(t)
  t.equal(cluster.nodes.length, 3)
  const redis = new Cluster(cluster.nodes)
  t.teardown(() => redis.disconnect())
  const keys = Array.from({ length: 12 }, (_, i) => `key-${i}`)
  for (const key of keys) await redis.set(key, `value of ${key}`)
  for (const key of keys) t.equal(await redis.get(key), `value of ${key}`)
  for (const node of cluster.nodes) {
    t.ok(await client(t, node.port).dbsize() > 0, `keys landed on ${node.port}`)
  }

  const channels = ['a', 'b', 'c'] // slots 15495, 3300, 7365: one per master
  const subscriber = new Cluster(cluster.nodes, { shardedSubscribers: true })
  t.teardown(() => subscriber.disconnect())
  for (const channel of channels) await subscriber.ssubscribe(channel)
  const received: Array<[string, string]> = []
  const all = new Promise<void>((resolve) => {
    subscriber.on('smessage', (channel: string, message: string) => {
      received.push([channel, message])
      if (received.length === channels.length) resolve()
    })
  })
  for (const channel of channels) t.equal(await redis.spublish(channel, `to ${channel}`), 1)
  await all
  t.same(received.sort(), channels.map((channel) => [channel, `to ${channel}`]))
})
