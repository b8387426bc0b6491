import type { Outgoing } from './outgoing.js'

/**
 * Sends and requests made while the client is not open, kept in order and
 * sent once it is (`maxQueued`). When full, a new message is refused and
 * what is queued stays.
 */
export class OfflineQueue {
  readonly #max: number
  readonly #items: Outgoing[] = []

  constructor (max: number) {
    this.#max = max
  }

  /** Keeps a message; false if the queue is full. */
  add (outgoing: Outgoing): boolean {
    if (this.#items.length >= this.#max) return false
    this.#items.push(outgoing)
    return true
  }

  /** Drops a message that no longer needs sending (its request timed out). */
  remove (outgoing: Outgoing): void {
    const index = this.#items.indexOf(outgoing)
    if (index !== -1) this.#items.splice(index, 1)
  }

  /** The ids of the queued requests: they have not left yet, so a lost connection does not fail them. */
  requestIds (): Set<number | undefined> {
    return new Set(this.#items.map((outgoing) => outgoing.id))
  }

  /** Everything queued, oldest first; the queue is left empty. */
  drain (): Outgoing[] {
    return this.#items.splice(0)
  }
}
