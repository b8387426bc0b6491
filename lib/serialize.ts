import fastJson from 'fast-json-stringify'
import type { TSchema } from 'typebox'
import { encodeEvent, type Stringify } from './protocol/envelope.js'

/*
 * Replies and events leave the server shaped by their schemas, as Fastify
 * shapes a response by its response schema: with fast-json-stringify (the
 * serialiser Fastify itself uses), compiled once per schema at route
 * registration. A field the schema does not declare is never sent (a
 * `passwordHash` a handler forgot to strip stays on the server); a value
 * that does not fit (a missing required field, a string for a number)
 * throws, which a handler's reply turns into INTERNAL.
 */

/** Encodes event `type` with `data`: through its schema's serialiser where the route declares one. */
export type EventEncoder = (type: string, data: unknown) => string

/** The serialiser of a schema, compiled once. */
export function compileSerializer (schema: TSchema): Stringify {
  return fastJson(schema as Parameters<typeof fastJson>[0]) as Stringify
}

/** Plain JSON.stringify for every event: routes with `serialize: false`, and events without a schema. */
export const encodeAnyEvent: EventEncoder = (type, data) => encodeEvent(type, data)

/** The event encoder of a route: each declared event through its schema's serialiser. */
export function compileEventEncoder (events: Record<string, TSchema> | undefined): EventEncoder {
  if (events === undefined) return encodeAnyEvent
  const serializers = new Map<string, Stringify>()
  for (const [type, schema] of Object.entries(events)) serializers.set(type, compileSerializer(schema))
  if (serializers.size === 0) return encodeAnyEvent
  return (type, data) => encodeEvent(type, data, serializers.get(type))
}
