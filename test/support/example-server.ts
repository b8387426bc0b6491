import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'

const SERVER = fileURLToPath(new URL('../../dist/example/server.js', import.meta.url))

/** A free TCP port on 127.0.0.1. */
export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  await once(server, 'close')
  return port
}

export interface ExampleServer {
  port: number
  process: ChildProcess
  /** Everything the server printed so far. */
  output (): string
  /** Sends SIGTERM and resolves with the exit code. */
  stop (): Promise<number | null>
}

/**
 * Runs the compiled example as `npm start` does (`node dist/example/server.js`)
 * with PORT and extra environment; resolves once it listens.
 */
export async function startExample (env: Record<string, string> = {}, port?: number): Promise<ExampleServer> {
  const chosen = port ?? await freePort()
  const child = spawn(process.execPath, [SERVER], {
    env: { ...process.env, PORT: String(chosen), HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  const exited = once(child, 'exit')
  await new Promise<void>((resolve, reject) => {
    const onData = (): void => {
      if (output.includes('Server listening')) {
        child.stdout!.off('data', onData)
        resolve()
      }
    }
    child.stdout!.on('data', onData)
    exited.then(() => reject(new Error(`example exited before listening:\n${output}`)), reject)
  })
  return {
    port: chosen,
    process: child,
    output: () => output,
    async stop () {
      if (child.exitCode !== null) return child.exitCode
      child.kill('SIGTERM')
      const [code] = await exited
      return code as number | null
    }
  }
}
