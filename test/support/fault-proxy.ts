import { once } from 'node:events'
import { createServer, connect, type Server, type Socket } from 'node:net'

/*
 * A TCP proxy in front of a server, for fault tests (no tc netem or
 * toxiproxy here): pass traffic, delay it, black-hole it (sockets stay open,
 * nothing moves), or reset every connection.
 */

export type FaultMode = { kind: 'pass' } | { kind: 'delay', ms: number } | { kind: 'blackhole' }

export interface FaultProxy {
  readonly port: number
  readonly url: string
  set (mode: FaultMode): void
  /** Resets every proxied connection (RST to both sides). */
  reset (): void
  close (): Promise<void>
}

export async function startFaultProxy (targetPort: number): Promise<FaultProxy> {
  let mode: FaultMode = { kind: 'pass' }
  const pairs = new Set<[Socket, Socket]>()
  const timers = new Set<NodeJS.Timeout>()

  function forward (from: Socket, to: Socket): void {
    from.on('data', (chunk: Buffer) => {
      if (mode.kind === 'blackhole') return
      if (mode.kind === 'delay') {
        // Delayed chunks keep their order: each waits the same time from its arrival.
        const timer = setTimeout(() => {
          timers.delete(timer)
          if (!to.destroyed) to.write(chunk)
        }, mode.ms)
        timers.add(timer)
      } else {
        to.write(chunk)
      }
    })
  }

  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1')
    const pair: [Socket, Socket] = [client, upstream]
    pairs.add(pair)
    const end = (): void => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    for (const socket of pair) {
      socket.on('error', end)
      socket.on('close', end)
    }
    forward(client, upstream)
    forward(upstream, client)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    set (next) { mode = next },
    reset () {
      for (const [client, upstream] of pairs) {
        client.resetAndDestroy()
        upstream.resetAndDestroy()
      }
      pairs.clear()
    },
    async close () {
      for (const timer of timers) clearTimeout(timer)
      for (const [client, upstream] of pairs) {
        client.destroy()
        upstream.destroy()
      }
      server.close()
      await once(server, 'close')
    }
  }
}
