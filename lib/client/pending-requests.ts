import { ClientErrorCode, RealtimeClientError } from './errors.js'
import type { Outgoing } from './outgoing.js'

/** A request awaiting its answer. */
export interface Pending {
  readonly outgoing: Outgoing
  readonly resolve: (value: any) => void
  readonly reject: (error: RealtimeClientError) => void
  readonly timer: ReturnType<typeof setTimeout>
}

/** Requests awaiting their answer, by id, each rejected with TIMEOUT if none comes in time. */
export class PendingRequests {
  readonly #pending = new Map<number, Pending>()

  /** Waits for the answer to request `id`; `expired` runs when its timeout rejects it. */
  wait (id: number, outgoing: Outgoing, timeout: number, expired: () => void): Promise<any> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        expired()
        reject(new RealtimeClientError(ClientErrorCode.TIMEOUT, `No answer to '${outgoing.type}' within ${timeout} ms`, undefined, outgoing.type))
      }, timeout)
      this.#pending.set(id, { outgoing, resolve, reject, timer })
    })
  }

  /** The request an answer is for, no longer pending; none for an answer to a send or to a request that timed out. */
  take (id: unknown): Pending | undefined {
    const pending = typeof id === 'number' ? this.#pending.get(id) : undefined
    if (pending === undefined) return undefined
    this.#pending.delete(id as number)
    clearTimeout(pending.timer)
    return pending
  }

  /** Rejects every request with `code` (CLOSED or CONNECTION_LOST), but those in `keep`. */
  fail (code: ClientErrorCode, keep: ReadonlySet<number | undefined> = new Set()): void {
    for (const [id, pending] of this.#pending) {
      if (keep.has(id)) continue
      this.#pending.delete(id)
      clearTimeout(pending.timer)
      const { type } = pending.outgoing
      pending.reject(new RealtimeClientError(code, code === ClientErrorCode.CLOSED
        ? 'The client is closed'
        : `The connection was lost before '${type}' was answered`, undefined, type))
    }
  }
}
