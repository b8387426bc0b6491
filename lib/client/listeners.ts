/** A listener of the client's events. */
export type Listener = (...args: any[]) => unknown

/** What the first listener of an event did: returned `value`, or threw `error`. */
export type Outcome = { value: unknown } | { error: unknown }

/** The client's listeners by event name: server events, `state` and `error`. */
export class Listeners {
  readonly #byEvent = new Map<string, Set<Listener>>()

  add (event: string, listener: Listener): void {
    let listeners = this.#byEvent.get(event)
    if (listeners === undefined) this.#byEvent.set(event, listeners = new Set())
    listeners.add(listener)
  }

  delete (event: string, listener: Listener): void {
    this.#byEvent.get(event)?.delete(listener)
  }

  emit (event: string, ...args: unknown[]): void {
    const listeners = this.#byEvent.get(event)
    if (listeners === undefined) return
    for (const listener of [...listeners]) {
      try {
        listener(...args)
      } catch (err) {
        // A listener's bug is the app's: report it as an uncaught error would be, and keep the connection.
        queueMicrotask(() => { throw err })
      }
    }
  }

  /**
   * Calls every listener of an event that asks for an answer, as emit()
   * does; the first one answers: what it returned or threw comes back
   * instead of being reported. Undefined when there is no listener.
   */
  answer (event: string, data: unknown): Outcome | undefined {
    const listeners = this.#byEvent.get(event)
    if (listeners === undefined || listeners.size === 0) return undefined
    let outcome: Outcome | undefined
    for (const listener of [...listeners]) {
      try {
        const value = listener(data)
        outcome ??= { value }
      } catch (err) {
        if (outcome === undefined) outcome = { error: err }
        else queueMicrotask(() => { throw err })
      }
    }
    return outcome
  }
}
