// Peer: fastify-realtime as in realtime.mjs, with the OpenTelemetry SDK
// installed and a Prometheus exporter reading its metrics (what the
// example's METRICS=1 does), to measure what metrics cost when they are on.
import { metrics } from '@opentelemetry/api'
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus'
import { MeterProvider } from '@opentelemetry/sdk-metrics'
import { start as startRealtime, protocol } from './realtime.mjs'

export { protocol }

export async function start (options) {
  const exporter = new PrometheusExporter({ preventServerStart: true })
  const provider = new MeterProvider({ readers: [exporter] })
  // Before the plugin registers: it takes its meter then.
  metrics.setGlobalMeterProvider(provider)
  const peer = await startRealtime(options)
  return {
    ...peer,
    close: async () => {
      await peer.close()
      await provider.shutdown()
    }
  }
}
