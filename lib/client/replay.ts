import type { AnyRoute, MessageName, MessageReply, RequestArgs, RouteShape, SendArgs } from './types.js'

/** For `onReconnect`: sends that go out at once, before the offline queue is sent. */
export interface Restorer<R extends RouteShape = AnyRoute> {
  /** Whether the server resumed the session (route option `recovery`): rooms are back, missed events follow, nothing was replayed. */
  readonly recovered: boolean
  send: <K extends MessageName<R>>(type: K, ...args: SendArgs<R, K>) => boolean
  request: <K extends MessageName<R>>(type: K, ...args: RequestArgs<R, K>) => Promise<MessageReply<R, K>>
}

/** A message to send again after a reconnect: its type and its data as first sent (JSON). */
export interface Replayed {
  readonly type: string
  readonly json: string | undefined
}

/**
 * What the server must be told again after a reconnect (the `replay`
 * option): the joins still in force, keyed by type and data, in the order
 * they were made. A send is owed once written, a request once answered (a
 * refused join is not replayed); the undoing type with the same data, once
 * written, settles it.
 */
export class Replay {
  /** Replayed type -> the type that undoes it. */
  readonly #types: ReadonlyMap<string, string | null>
  /** Undoing type -> the type it undoes. */
  readonly #undoes = new Map<string, string>()
  readonly #owed = new Map<string, Replayed>()

  constructor (types: Record<string, string | null>) {
    if (typeof types !== 'object' || types === null) throw new TypeError('replay must be an object or false')
    this.#types = new Map(Object.entries(types))
    for (const [type, undo] of this.#types) {
      if (undo !== null && typeof undo !== 'string') throw new TypeError(`replay.${type} must be a message type or null`)
      if (undo !== null) this.#undoes.set(undo, type)
    }
  }

  /** A message was put on the socket; `json` is its data as sent. */
  written (type: string, json: string | undefined, request: boolean): void {
    const undone = this.#undoes.get(type)
    if (undone !== undefined) this.#owed.delete(key(undone, json))
    if (!request) this.#remember(type, json)
  }

  /** The server accepted a request. */
  answered (type: string, json: string | undefined): void {
    this.#remember(type, json)
  }

  /** The server refused a replayed message: it is not sent again. */
  refused (type: string, json: string | undefined): void {
    this.#owed.delete(key(type, json))
  }

  /** What to send again, oldest first. */
  owed (): Replayed[] {
    return [...this.#owed.values()]
  }

  #remember (type: string, json: string | undefined): void {
    if (this.#types.has(type)) this.#owed.set(key(type, json), { type, json })
  }
}

function key (type: string, json: string | undefined): string {
  return `${type}\n${json ?? ''}`
}
