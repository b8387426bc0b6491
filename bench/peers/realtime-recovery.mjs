// Peer: fastify-realtime as in realtime.mjs, with session recovery on the
// route (`recovery: true`): every broadcast goes through the namespace's
// history (in memory, or a Redis stream appended by a script with Redis),
// to measure what recovery costs beside the same route without it.
import { start as startRealtime, protocol } from './realtime.mjs'

export { protocol }

export function start (options) {
  return startRealtime({ ...options, recovery: true })
}
