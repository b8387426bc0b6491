// Formats the benchmark's results: a Markdown table of medians (min-max),
// the target ratios, and optionally writes both into BENCHMARKS.md.
import { readFile, writeFile } from 'node:fs/promises'

const METRICS = {
  p50: ['p50 ms', (v) => v.toFixed(2)],
  p99: ['p99 ms', (v) => v.toFixed(2)],
  roundTripsPerSecond: ['round trips/s', (v) => Math.round(v).toLocaleString('en-US')],
  cpuPerRoundTrip: ['server CPU µs/round trip', (v) => v.toFixed(1)],
  cpuPerDelivery: ['server CPU µs/delivery', (v) => v.toFixed(2)],
  cpuPerDeliveryA: ['of which A', (v) => v.toFixed(2)],
  cpuPerDeliveryB: ['of which B', (v) => v.toFixed(2)],
  redisCpuPerBroadcast: ['redis-server CPU µs/broadcast', (v) => v.toFixed(1)],
  deliveriesPerSecond: ['deliveries/s', (v) => Math.round(v).toLocaleString('en-US')],
  delivered: ['delivered', (v) => `${(v * 100).toFixed(1)} %`],
  connectionsPerSecond: ['connections/s', (v) => Math.round(v).toLocaleString('en-US')],
  heapPerConnection: ['heap KB/conn', (v) => (v / 1024).toFixed(2)],
  rssPerConnection: ['RSS KB/conn', (v) => (v / 1024).toFixed(2)],
  acceptsPerSecond: ['accepted/s', (v) => Math.round(v).toLocaleString('en-US')],
  cpuPerAccept: ['server CPU µs/accepted conn', (v) => v.toFixed(1)],
  eventsKept: ['events kept', (v) => Math.round(v).toLocaleString('en-US')],
  streamBytesPer1000: ['stream KB per 1,000 events (MEMORY USAGE)', (v) => (v / 1024).toFixed(1)],
  usedMemoryPer1000: ['used_memory KB per 1,000 events (INFO)', (v) => (v / 1024).toFixed(1)]
}

function cell (metric, { median, min, max }) {
  const format = METRICS[metric][1]
  // A cell that measured nothing (no delivery) has no latency: NaN, which IPC turns into null.
  const show = (value) => value === null || Number.isNaN(value) ? '–' : format(value)
  return `${show(median)} (${show(min)}–${show(max)})`
}

function table (results) {
  const lines = []
  for (const scenario of [...new Set(results.map((row) => row.scenario))]) {
    const rows = results.filter((row) => row.scenario === scenario)
    const metrics = Object.keys(rows[0].metrics)
    lines.push(`### ${scenario}`, '', `| peer | ${metrics.map((m) => METRICS[m][0]).join(' | ')} |`,
      `| --- |${metrics.map(() => ' ---: |').join('')}`)
    for (const row of rows) lines.push(`| ${row.peer} | ${metrics.map((m) => cell(m, row.metrics[m])).join(' | ')} |`)
    lines.push('')
  }
  return lines.join('\n')
}

function value (results, scenarioStart, peer, metric) {
  return results.find((row) => row.scenario.startsWith(scenarioStart) && row.peer === peer)?.metrics[metric]?.median
}

/** The cross-instance rows at both sizes; those without a goal are context, against the hand-written loop. */
function crossRows (n) {
  const scenario = `cross-instance fan-out N=${n} on`
  return [
    [`cross-instance N=${n}: latency p50, fastify-realtime+redis / socket.io+redis-adapter`, scenario, 'realtime+redis', 'socketio+redis', 'p50', '≤', 0.6],
    [`cross-instance N=${n}: CPU per delivery (A + B), fastify-realtime+redis / socket.io+redis-adapter`, scenario, 'realtime+redis', 'socketio+redis', 'cpuPerDelivery', '≤', 0.6],
    [`cross-instance N=${n}: latency p50, fastify-realtime+redis / hand-written ws+ioredis`, scenario, 'realtime+redis', 'ws+redis', 'p50'],
    [`cross-instance N=${n}: latency p50, socket.io+redis-adapter / hand-written ws+ioredis`, scenario, 'socketio+redis', 'ws+redis', 'p50'],
    [`cross-instance N=${n}: CPU per delivery, fastify-realtime+redis / hand-written ws+ioredis`, scenario, 'realtime+redis', 'ws+redis', 'cpuPerDelivery']
  ]
}

/** The targets, each as a ratio of medians measured in the same run, then the context rows. */
function ratios (results) {
  const rows = [
    ['typed echo: server CPU per round trip, fastify-realtime / raw ws', 'echo throughput', 'realtime', 'ws', 'cpuPerRoundTrip', '≤', 1.10],
    ['steady fan-out N=1000: server CPU per delivery, fastify-realtime / raw ws', 'fan-out N=1000', 'realtime', 'ws', 'cpuPerDelivery', '≤', 0.8],
    ['steady fan-out N=5000: server CPU per delivery, fastify-realtime / raw ws', 'fan-out N=5000', 'realtime', 'ws', 'cpuPerDelivery', '≤', 0.8],
    ['burst fan-out: deliveries/s, fastify-realtime / socket.io', 'burst', 'realtime', 'socketio', 'deliveriesPerSecond', '≥', 1.2],
    ...crossRows(1000).slice(0, 2),
    ...crossRows(10).slice(0, 2),
    ['idle connection: heap, fastify-realtime / raw ws', 'idle', 'realtime', 'ws', 'heapPerConnection', '≤', 1.2],
    ['idle connection: RSS, fastify-realtime / socket.io', 'idle', 'realtime', 'socketio', 'rssPerConnection', '≤', 0.6],
    ['typed echo, 1 connection: latency p50, fastify-realtime / raw ws', 'echo latency', 'realtime', 'ws', 'p50', '≤', 1.10],
    ['typed echo, 1 connection: latency p99, fastify-realtime / raw ws', 'echo latency', 'realtime', 'ws', 'p99', '≤', 1.3],
    ['steady fan-out N=1000: latency p50, fastify-realtime / raw ws', 'fan-out N=1000', 'realtime', 'ws', 'p50', '≤', 1.0],
    ['accept rate: connections accepted/s, fastify-realtime / @fastify/websocket', 'accept rate', 'realtime', 'fastify-ws', 'acceptsPerSecond', '≥', 1.1],
    ['accept rate: connections accepted/s, fastify-realtime / raw ws', 'accept rate', 'realtime', 'ws', 'acceptsPerSecond', '≥', 0.9],
    ['accept rate: server CPU per accepted connection, fastify-realtime / raw ws', 'accept rate', 'realtime', 'ws', 'cpuPerAccept'],
    ['accept rate: server CPU per accepted connection, fastify-realtime / @fastify/websocket', 'accept rate', 'realtime', 'fastify-ws', 'cpuPerAccept'],
    ['ws-client fan-out N=1000: server CPU per delivery, fastify-realtime / raw ws', 'ws-client fan-out', 'realtime', 'ws', 'cpuPerDelivery'],
    ['ws-client fan-out N=1000: latency p50, fastify-realtime / raw ws', 'ws-client fan-out', 'realtime', 'ws', 'p50'],
    ['cross-instance N=1000: redis-server CPU per broadcast, fastify-realtime+redis / socket.io+redis-adapter', 'cross-instance fan-out N=1000', 'realtime+redis', 'socketio+redis', 'redisCpuPerBroadcast'],
    ['recovery on / off: steady fan-out N=1000, server CPU per delivery', 'recovery: fan-out N=1000', 'realtime-recovery', 'realtime', 'cpuPerDelivery'],
    ['recovery on / off: cross-instance N=1000, latency p50', 'recovery: cross-instance fan-out N=1000 on', 'realtime-recovery+redis', 'realtime+redis', 'p50'],
    ['recovery on / off: cross-instance N=1000, CPU per delivery (A + B)', 'recovery: cross-instance fan-out N=1000 on', 'realtime-recovery+redis', 'realtime+redis', 'cpuPerDelivery'],
    ['recovery on / off: cross-instance N=10, latency p50', 'recovery: cross-instance fan-out N=10 on', 'realtime-recovery+redis', 'realtime+redis', 'p50'],
    ['recovery on / off: cross-instance N=10, redis-server CPU per broadcast', 'recovery: cross-instance fan-out N=10 on', 'realtime-recovery+redis', 'realtime+redis', 'redisCpuPerBroadcast'],
    ...crossRows(1000).slice(2),
    ...crossRows(10).slice(2)
  ]
  const lines = ['| target | ratio | goal | |', '| --- | ---: | ---: | --- |']
  for (const [label, scenario, ours, theirs, metric, sense, goal] of rows) {
    const a = value(results, scenario, ours, metric)
    const b = value(results, scenario, theirs, metric)
    if (a == null || b == null) continue
    const ratio = a / b
    if (goal === undefined) {
      lines.push(`| ${label} | ${ratio.toFixed(2)} | (context) | |`)
    } else {
      const met = sense === '≤' ? ratio <= goal : ratio >= goal
      lines.push(`| ${label} | ${ratio.toFixed(2)} | ${sense} ${goal} | ${met ? 'met' : 'missed'} |`)
    }
  }
  return lines.join('\n')
}

export async function report (results, machine, { write }) {
  const text = `Machine: ${machine}. Medians of the runs, (min–max) in brackets.\n\n${table(results)}\n#### Targets\n\n${ratios(results)}\n`
  console.log(`\n${text}`)
  if (!write) return
  const file = new URL('../BENCHMARKS.md', import.meta.url)
  const current = await readFile(file, 'utf8')
  const start = current.indexOf('<!-- bench:start -->')
  const end = current.indexOf('<!-- bench:end -->')
  if (start === -1 || end === -1) throw new Error('BENCHMARKS.md has no <!-- bench:start --> / <!-- bench:end --> markers')
  await writeFile(file, `${current.slice(0, start)}<!-- bench:start -->\n${text}${current.slice(end)}`)
}
