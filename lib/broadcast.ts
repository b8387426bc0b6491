import type { EventMap, EventName, EventPayload } from './route.js'
import { kEncode, kPublish } from './symbols.js'

/** Where an operator hands its encoded frame: a namespace, or an emitter's namespace. */
export interface BroadcastTarget {
  /** Encodes an event as its route declares it (through the event's schema). */
  [kEncode] (type: string, data: unknown): string
  [kPublish] (rooms: readonly string[], except: readonly string[], frame: string): Promise<void>
}

/** A connection, or a connection id: what `except()` accepts. */
export type ConnectionRef = string | { readonly id: string }

/**
 * Who a broadcast goes to: `to()` narrows to rooms (their union), `except()`
 * removes connections. Each call returns a new operator, so one can be kept
 * and reused. `emit()` encodes the frame once, whatever the number of
 * recipients and instances.
 */
export class BroadcastOperator<E extends EventMap = EventMap> {
  readonly #namespace: BroadcastTarget
  readonly #rooms: readonly string[]
  readonly #except: readonly string[]

  constructor (namespace: BroadcastTarget, rooms: readonly string[], except: readonly string[]) {
    this.#namespace = namespace
    this.#rooms = rooms
    this.#except = except
  }

  /** Adds rooms: members of any of them receive the event, once each. */
  to (room: string | readonly string[]): BroadcastOperator<E> {
    return new BroadcastOperator(this.#namespace, addUnique(this.#rooms, room), this.#except)
  }

  /** Same as `to()`. */
  in (room: string | readonly string[]): BroadcastOperator<E> {
    return this.to(room)
  }

  /** Leaves out connections, on whatever instance they live. */
  except (connection: ConnectionRef | readonly ConnectionRef[]): BroadcastOperator<E> {
    const refs = Array.isArray(connection) ? connection : [connection as ConnectionRef]
    return new BroadcastOperator(this.#namespace, this.#rooms,
      addUnique(this.#except, refs.map((ref) => typeof ref === 'string' ? ref : ref.id)))
  }

  /**
   * Sends `{"type": type, "data": data}` to every recipient. Local recipients
   * have it queued before this returns; the promise settles once the frame
   * has left for the other instances (at once without Redis). It rejects
   * with FST_RT_BROKER_UNAVAILABLE when the broker cannot publish in time; an
   * ignored rejection is logged, never unhandled.
   */
  emit<K extends EventName<E>> (type: K, data: EventPayload<E, K>): Promise<void> {
    return this.#namespace[kPublish](this.#rooms, this.#except, this.#namespace[kEncode](type, data))
  }
}

function addUnique (list: readonly string[], more: string | readonly string[]): readonly string[] {
  const items = typeof more === 'string' ? [more] : more
  if (list.length === 0 && items.length <= 1) return items
  const out = [...list]
  for (const item of items) if (!out.includes(item)) out.push(item)
  return out
}
