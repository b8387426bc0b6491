import { spawn, type ChildProcess } from 'node:child_process'
import type { TestContext } from '../helper.js'

export interface LineChild {
  readonly child: ChildProcess
  /** The next line the child prints (buffered, so none is missed). */
  nextLine (): Promise<string>
}

/**
 * Runs `node <args>` as a child that talks in lines on stdout; killed at
 * teardown (its stdin is closed first, which some children take as "stop").
 */
export function spawnLines (t: TestContext, args: string[]): LineChild {
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => {
    child.stdin!.end()
    child.kill('SIGKILL')
  })
  const waiting: Array<(line: string) => void> = []
  const ready: string[] = []
  let buffered = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk
    let end: number
    while ((end = buffered.indexOf('\n')) !== -1) {
      const line = buffered.slice(0, end)
      buffered = buffered.slice(end + 1)
      const waiter = waiting.shift()
      if (waiter !== undefined) waiter(line)
      else ready.push(line)
    }
  })
  return {
    child,
    nextLine: async () => ready.shift() ?? new Promise((resolve) => waiting.push(resolve))
  }
}
