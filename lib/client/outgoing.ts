import { RESERVED_TYPES } from '../protocol/envelope.js'

/** A message on its way to the server, its data encoded when the app handed it over. */
export interface Outgoing {
  readonly type: string
  /** `data` as JSON; undefined leaves `data` out of the frame. */
  readonly json: string | undefined
  /** A request's id; none for a send. */
  readonly id: number | undefined
}

/**
 * Checks a message the app sends and encodes its data, so that a mistake
 * (a type that is not a string or is the protocol's own, data JSON cannot
 * carry such as a BigInt or a cycle) throws a TypeError before anything is
 * queued or sent. Data is encoded once: what was handed over is what goes
 * out, even if the app changes the object while it waits in the queue.
 */
export function encodeData (type: unknown, data: unknown): string | undefined {
  if (typeof type !== 'string') throw new TypeError('A message type must be a string')
  if (RESERVED_TYPES.has(type)) throw new TypeError(`'${type}' is a type of the protocol itself`)
  return JSON.stringify(data)
}

/** The frame of docs/protocol.md: `{"type", "data"?, "id"?}`. */
export function encodeFrame ({ type, json, id }: Outgoing): string {
  return '{"type":' + JSON.stringify(type) +
    (json === undefined ? '' : ',"data":' + json) +
    (id === undefined ? '' : ',"id":' + String(id)) + '}'
}
