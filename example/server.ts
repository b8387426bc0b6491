import { readFileSync } from 'node:fs'
import { buildApp } from './app.js'

const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'

// TLS_CERT and TLS_KEY (PEM file paths): HTTPS and WSS on the same port; plain HTTP and WS otherwise.
const certPath = process.env.TLS_CERT
const keyPath = process.env.TLS_KEY
const tls = certPath !== undefined && certPath !== '' && keyPath !== undefined && keyPath !== ''
  ? { cert: readFileSync(certPath), key: readFileSync(keyPath) }
  : undefined

const redisUrl = process.env.REDIS_URL
const app = await buildApp({
  logger: { level: process.env.LOG_LEVEL ?? 'info' },
  // METRICS=1: GET /metrics in Prometheus' text format.
  metrics: process.env.METRICS === '1',
  ...(tls === undefined ? {} : { tls }),
  // With REDIS_URL, instances on other ports share rooms, pushes and user commands.
  realtime: redisUrl === undefined || redisUrl === '' ? {} : { redis: redisUrl }
})

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    // Clients get 1001 and may reconnect to another instance.
    app.close().then(() => process.exit(0), () => process.exit(1))
  })
}

await app.listen({ port, host })
