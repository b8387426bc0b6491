/** A listener of the client's events. */
export type Listener = (...args: any[]) => unknown

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
    this.answer(event, args)
  }

  /**
   * Calls the listeners of `event`. With `answer` (an event that asks for
   * an answer), the first listener is handed to it, so that what it
   * returns or throws becomes the answer instead of being reported;
   * without listeners, `answer` gets undefined.
   */
  answer (event: string, args: unknown[], answer?: (first: Listener | undefined) => void): void {
    const listeners = [...this.#byEvent.get(event) ?? []]
    answer?.(listeners.shift())
    for (const listener of listeners) {
      try {
        listener(...args)
      } catch (err) {
        // A listener's bug is the app's: report it as an uncaught error would be, and keep the connection.
        queueMicrotask(() => { throw err })
      }
    }
  }
}
