// node bench/capacity.mjs [--repeats=3] [--write]: the capacity model of
// docs/scaling.md, calibrated and checked on this machine.
//
// Calibration (two fastify-realtime instances A and B, one redis-server,
// all started here), at a quiet and a busy broadcast rate: A broadcasts to
// a room nobody is in, then to a room with 10 and with 100 members on B.
// From the CPU each process spends (instances: process.cpuUsage();
// redis-server: INFO CPU deltas), less what each spends idle over the same
// time:
//   c_pub  CPU of the publishing instance per broadcast
//   c_msg  CPU of a receiving instance per message from Redis (its wake-up,
//          the header, the frame), before any delivery
//   c_del  CPU per delivery (a frame written to one socket)
//   r_pub  redis-server CPU per PUBLISH, r_sub per subscriber it goes to
// Check, at the first two rates: k = 2 and 3 instances, 3,000 connections spread over
// them and over 100 rooms (every room has members on every instance),
// broadcasts for 10 s from all instances in turn. The model predicts the CPU
// of the instances together and of redis-server; both are measured.
// Also: redis-server memory per subscription. --write puts the tables into
// docs/scaling.md.
import { cpus } from 'node:os'
import { readFile, writeFile } from 'node:fs/promises'
import { rpc, runJob, startServer, stop } from './orchestrate.mjs'
import { median, startRedis } from './support.mjs'

const args = Object.fromEntries(process.argv.slice(2).map((arg) => {
  const [key, value] = arg.replace(/^--/, '').split('=')
  return [key, value ?? true]
}))
const REPEATS = Number(args.repeats ?? 3)
/**
 * Broadcasts per second, all instances together: a quiet load (each
 * message wakes its process), a busier one, and (calibrated only: this
 * machine cannot also deliver the check's fan-out at that rate) a saturated
 * one, where messages share wake-ups and reads.
 */
const RATES = [200, 1200, 5000]
const CHECK_RATES = [200, 1200]
/** Members on B in the calibration: two sizes, for the intercept and the slope. */
const members = (rate) => rate > 1200 ? [1, 10] : [10, 100]
/** Seconds each calibration cell and each check lasts. */
const CAL_SECONDS = 5
const CHECK_SECONDS = 10
const CHECK = { connections: 3000, rooms: 100 }

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function withInstances (count, redis, fn) {
  const servers = []
  try {
    for (let i = 0; i < count; i++) servers.push(await startServer('realtime', redis.url))
    return await fn(servers)
  } finally {
    for (const server of servers) await stop(server.child)
  }
}

/** CPU of every instance and of redis-server (µs) spent while `fn` runs, and its duration (s). */
async function measure (servers, redis, fn) {
  const before = await Promise.all(servers.map((server) => server.cpu()))
  const redisBefore = await redis.cpu()
  const started = performance.now()
  await fn()
  const seconds = (performance.now() - started) / 1000
  const after = await Promise.all(servers.map((server) => server.cpu()))
  return { instances: after.map((cpu, i) => cpu - before[i]), redis: await redis.cpu() - redisBefore, seconds }
}

/** One calibration: µs per second idle, then the fits. */
async function calibrate (redis, rate) {
  const CAL_BROADCASTS = rate * CAL_SECONDS
  return withInstances(2, redis, async ([a, b]) => {
    const idle = await measure([a, b], redis, () => sleep(3000))
    const idlePerSecond = { instance: (idle.instances[0] + idle.instances[1]) / 2 / idle.seconds, redis: idle.redis / idle.seconds }
    const less = (cpu, seconds, perSecond) => cpu - perSecond * seconds
    // Nobody subscribed: the publish alone, in A and in Redis.
    const alone = await measure([a, b], redis, () => rpc(a.child, 'fanout', { room: 'nobody', count: CAL_BROADCASTS, rate }))
    const perMember = {}
    const [small, large] = members(rate)
    for (const n of [small, large]) {
      let window
      await runJob('members', { url: b.url, protocol: b.protocol, n, room: `m${n}`, expected: CAL_BROADCASTS, sample: 10, deadlineMs: 60_000 },
        async () => {
          window = measure([a, b], redis, () => rpc(a.child, 'fanout', { room: `m${n}`, count: CAL_BROADCASTS, rate }))
          await window
        })
      const spent = await window
      perMember[n] = {
        a: less(spent.instances[0], spent.seconds, idlePerSecond.instance) / CAL_BROADCASTS,
        b: less(spent.instances[1], spent.seconds, idlePerSecond.instance) / CAL_BROADCASTS,
        redis: less(spent.redis, spent.seconds, idlePerSecond.redis) / CAL_BROADCASTS
      }
    }
    const cDel = (perMember[large].b - perMember[small].b) / (large - small)
    const rPub = less(alone.redis, alone.seconds, idlePerSecond.redis) / CAL_BROADCASTS
    return {
      idleInstance: idlePerSecond.instance,
      idleRedis: idlePerSecond.redis,
      cPub: (less(alone.instances[0], alone.seconds, idlePerSecond.instance) / CAL_BROADCASTS + perMember[small].a + perMember[large].a) / 3,
      cMsg: perMember[small].b - small * cDel,
      cDel,
      rPub,
      rSub: (perMember[small].redis + perMember[large].redis) / 2 - rPub
    }
  })
}

/** What the model says k instances and Redis spend on the check's load, in µs. */
function predict (model, k, seconds, broadcasts) {
  const { connections, rooms } = CHECK
  const deliveries = broadcasts * connections / rooms
  // Every instance has members in every room: it subscribes to all of them and hears every broadcast, its own included.
  const instances = deliveries * model.cDel + k * broadcasts * model.cMsg + broadcasts * model.cPub + k * seconds * model.idleInstance
  const redis = broadcasts * (model.rPub + k * model.rSub) + seconds * model.idleRedis
  return { instances, redis }
}

async function check (redis, model, k, rate) {
  const broadcasts = rate * CHECK_SECONDS
  return withInstances(k, redis, async (servers) => {
    const rooms = Array.from({ length: CHECK.rooms }, (_, i) => `r${i}`)
    let before
    let spent
    let sending
    // Measured from the first broadcast to the last delivery.
    const result = await runJob('spread', {
      urls: servers.map((server) => server.url),
      protocol: servers[0].protocol,
      n: CHECK.connections,
      rooms: CHECK.rooms,
      expected: broadcasts * CHECK.connections / CHECK.rooms,
      deadlineMs: 60_000
    }, async () => {
      if (before === undefined) {
        before = { instances: await Promise.all(servers.map((server) => server.cpu())), redis: await redis.cpu(), at: performance.now() }
        sending = Promise.all(servers.map((server) => rpc(server.child, 'spray', { rooms, count: Math.round(broadcasts / k), rate: rate / k })))
      } else {
        await sending
        const after = await Promise.all(servers.map((server) => server.cpu()))
        spent = {
          instances: after.map((cpu, i) => cpu - before.instances[i]),
          redis: await redis.cpu() - before.redis,
          seconds: (performance.now() - before.at) / 1000
        }
      }
    })
    const predicted = predict(model, k, spent.seconds, Math.round(broadcasts / k) * k)
    return {
      k,
      rate,
      delivered: result.delivered / result.expected,
      seconds: spent.seconds,
      instancesPredicted: predicted.instances,
      instancesMeasured: spent.instances.reduce((sum, cpu) => sum + cpu, 0),
      redisPredicted: predicted.redis,
      redisMeasured: spent.redis
    }
  })
}

/** redis-server memory per subscription: one connection subscribes to 10,000 room channels. */
async function subscriptionMemory (redis) {
  const { Redis } = await import('ioredis')
  const client = new Redis(redis.url)
  try {
    await client.ping()
    const before = Number((await redis.info('memory')).used_memory)
    const channels = Array.from({ length: 10_000 }, (_, i) => `fastify-realtime#/bench#room-${i}#`)
    for (let i = 0; i < channels.length; i += 500) await client.subscribe(...channels.slice(i, i + 500))
    return (Number((await redis.info('memory')).used_memory) - before) / channels.length
  } finally {
    client.disconnect()
  }
}

const redis = await startRedis()
const started = Date.now()
const models = Object.fromEntries(RATES.map((rate) => [rate, []]))
const checks = Object.fromEntries(CHECK_RATES.flatMap((rate) => [2, 3].map((k) => [`${rate}/${k}`, []])))
const subscriptionBytes = []
try {
  for (let repeat = 0; repeat < REPEATS; repeat++) {
    subscriptionBytes.push(await subscriptionMemory(redis))
    for (const rate of RATES) {
      const model = await calibrate(redis, rate)
      models[rate].push(model)
      console.log(JSON.stringify({ rate, model }))
      if (!CHECK_RATES.includes(rate)) continue
      for (const k of [2, 3]) {
        const result = await check(redis, model, k, rate)
        checks[`${rate}/${k}`].push(result)
        console.log(JSON.stringify(result))
      }
    }
  }
} finally {
  await redis.stop()
}

const mid = (list, key) => median(list.map((item) => item[key]))
const model = Object.fromEntries(RATES.map((rate) => [rate, Object.fromEntries(Object.keys(models[rate][0]).map((key) => [key, mid(models[rate], key)]))]))
const ms = (us) => `${(us / 1000).toFixed(0)} ms`
const row = (label, key, digits) => `| ${label} | ${RATES.map((rate) => model[rate][key].toFixed(digits)).join(' | ')} |`
const lines = [
  `Machine: ${cpus().length} cores (${cpus()[0]?.model.trim()}), Node ${process.version}, ${new Date().toISOString().slice(0, 10)}, ${REPEATS} calibrations and checks, ${Math.round((Date.now() - started) / 1000)} s; medians.`,
  '',
  `| calibrated, µs | ${RATES.map((rate) => `at ${rate} broadcasts/s`).join(' | ')} |`,
  `| --- |${RATES.map(() => ' ---: |').join('')}`,
  row('c_del: instance CPU per delivery', 'cDel', 2),
  row('c_msg: receiving instance CPU per message from Redis', 'cMsg', 1),
  row('c_pub: publishing instance CPU per broadcast', 'cPub', 1),
  row('r_pub: redis-server CPU per PUBLISH', 'rPub', 1),
  row('r_sub: redis-server CPU per subscriber a message goes to', 'rSub', 1),
  row('idle instance, CPU µs per second', 'idleInstance', 0),
  row('idle redis-server, CPU µs per second', 'idleRedis', 0),
  '',
  `redis-server memory per subscription (10,000 channels on one connection): ${median(subscriptionBytes).toFixed(0)} bytes.`,
  '',
  `Check: ${CHECK.connections.toLocaleString('en-US')} connections over k instances and ${CHECK.rooms} rooms (every room has members on every instance), broadcasts for ${CHECK_SECONDS} s from all instances in turn, ${CHECK.connections / CHECK.rooms} deliveries each; CPU from the first broadcast to the last delivery.`,
  '',
  '| broadcasts/s | k | instances: predicted | measured | measured / predicted | redis-server: predicted | measured | measured / predicted |',
  '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'
]
for (const rate of CHECK_RATES) {
  for (const k of [2, 3]) {
    const runs = checks[`${rate}/${k}`]
    const ip = mid(runs, 'instancesPredicted')
    const im = mid(runs, 'instancesMeasured')
    const rp = mid(runs, 'redisPredicted')
    const rm = mid(runs, 'redisMeasured')
    lines.push(`| ${rate} | ${k} | ${ms(ip)} | ${ms(im)} | ${(im / ip).toFixed(2)} | ${ms(rp)} | ${ms(rm)} | ${(rm / rp).toFixed(2)} |`)
  }
}
const text = lines.join('\n') + '\n'
console.log(`\n${text}`)
if (args.write === true) {
  const file = new URL('../docs/scaling.md', import.meta.url)
  const current = await readFile(file, 'utf8')
  const start = current.indexOf('<!-- capacity:start -->')
  const end = current.indexOf('<!-- capacity:end -->')
  if (start === -1 || end === -1) throw new Error('docs/scaling.md has no <!-- capacity:start --> / <!-- capacity:end --> markers')
  await writeFile(file, `${current.slice(0, start)}<!-- capacity:start -->\n${text}${current.slice(end)}`)
}
