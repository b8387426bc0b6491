import type { ResolvedAsyncApiOptions } from './options.js'
import { CloseCode, closeCodeAllowsReconnect } from './protocol/close-codes.js'
import { MAX_ID_LENGTH } from './protocol/envelope.js'
import { WireErrorCode } from './protocol/wire-errors.js'

/*
 * The AsyncAPI 3.0 document of the routes, built from their own schemas.
 * It is written from the client's side, like the public WebSocket APIs'
 * documents: a `send` operation is a message the client sends (its `reply`
 * the answer to a request), a `receive` operation an event it receives.
 */

/** A route as `app.ws()` declared it, with its full path. */
export interface DocumentedRoute {
  readonly path: string
  readonly definition: object
}

/** An AsyncAPI 3.0 document (plain JSON: serialise it, or walk it). */
export interface AsyncApiDocument {
  asyncapi: '3.0.0'
  info: { title: string, version: string, description: string }
  defaultContentType: 'application/json'
  channels: Record<string, any>
  operations: Record<string, any>
  components: { schemas: Record<string, any>, messages: Record<string, any> }
  /** The close codes the server sends, and whether a client may reconnect after each. */
  'x-close-codes': Array<{ code: number, name: string, reconnect: boolean }>
}

type Schema = Record<string, unknown>

const REQUEST_ID = { $ref: '#/components/schemas/RequestId' }
const ERROR_MESSAGE = { $ref: '#/components/messages/error' }

/** Builds the document of `routes` (in their declaration order). */
export function buildAsyncApi (routes: readonly DocumentedRoute[], options: ResolvedAsyncApiOptions): AsyncApiDocument {
  const channels: Record<string, any> = {}
  const operations: Record<string, any> = {}
  const channelIds = new Set<string>()
  for (const { path, definition } of routes) {
    const id = unique(channelIds, identifier(path.slice(1)) || 'root')
    const route = definition as RouteShape
    channels[id] = channelOf(path, route)
    if (route.raw !== true) describeMessages(id, channels[id], operations, route)
  }
  return {
    asyncapi: '3.0.0',
    info: {
      title: options.title,
      version: options.version,
      description: (options.description === undefined ? '' : options.description + '\n\n') + PROTOCOL_DESCRIPTION
    },
    defaultContentType: 'application/json',
    channels,
    operations,
    components: {
      schemas: { RequestId: REQUEST_ID_SCHEMA, ErrorFrame: errorFrameSchema() },
      messages: {
        error: {
          name: 'error',
          title: 'Error answer',
          summary: 'The answer to a message that could not be handled; the connection stays open.',
          payload: { $ref: '#/components/schemas/ErrorFrame' }
        },
        ping: { name: 'ping', title: 'Application ping', payload: envelope('ping', undefined, false) },
        pong: { name: 'pong', title: 'Answer to ping', payload: envelope('pong', undefined, false) }
      }
    },
    'x-close-codes': Object.entries(CloseCode).map(([name, code]) => ({ code, name, reconnect: closeCodeAllowsReconnect(code) }))
  }
}

/** What the generator reads of a route declaration. */
interface RouteShape {
  raw?: boolean
  messages?: Record<string, { data?: unknown, reply?: unknown }>
  events?: Record<string, unknown>
  presence?: boolean | { events?: boolean }
  recovery?: unknown
  schema?: { querystring?: unknown, headers?: unknown }
  protocols?: readonly string[]
}

function channelOf (path: string, route: RouteShape): Record<string, unknown> {
  const parameters: Record<string, unknown> = {}
  // Fastify's `:name` (with an optional regexp) and `*` become AsyncAPI's `{name}`.
  const address = path.replace(/:(\w+)(\([^)]*\))?/g, (_match, name: string) => {
    parameters[name] = { description: `Route parameter \`${name}\`` }
    return `{${name}}`
  }).replace(/\*/g, () => {
    parameters.wildcard = { description: 'The rest of the path (`*`)' }
    return '{wildcard}'
  })
  const channel: Record<string, unknown> = {
    address,
    title: path,
    messages: {}
  }
  if (Object.keys(parameters).length > 0) channel.parameters = parameters
  let description = route.raw === true
    ? 'A raw route: frames are passed on as sent (text or binary), without the envelope or typed messages.'
    : 'Speaks the JSON envelope `{"type", "data", "id"?}`, one object per text frame.'
  if (route.protocols !== undefined) description += ` Subprotocols: ${route.protocols.join(', ')}.`
  channel.description = description
  const binding: Record<string, unknown> = { method: 'GET' }
  if (route.schema?.querystring !== undefined) binding.query = objectSchema(route.schema.querystring)
  if (route.schema?.headers !== undefined) binding.headers = objectSchema(route.schema.headers)
  channel.bindings = { ws: { ...binding, bindingVersion: '0.1.0' } }
  return channel
}

/** The messages, replies and events of a JSON route, and the operations that send and receive them. */
function describeMessages (channelId: string, channel: { messages: Record<string, unknown> }, operations: Record<string, unknown>,
  route: RouteShape): void {
  const channelRef = { $ref: `#/channels/${channelId}` }
  const messageIds = new Set(['error', 'ping', 'pong'])
  const operationIds = new Set(Object.keys(operations))
  const ref = (messageId: string): { $ref: string } => ({ $ref: `#/channels/${channelId}/messages/${messageId}` })
  channel.messages.error = ERROR_MESSAGE
  channel.messages.ping = { $ref: '#/components/messages/ping' }
  channel.messages.pong = { $ref: '#/components/messages/pong' }

  for (const [type, spec] of Object.entries(route.messages ?? {})) {
    const id = unique(messageIds, identifier(type))
    const replyId = unique(messageIds, `${id}.reply`)
    channel.messages[id] = {
      name: type,
      title: type,
      payload: envelope(type, spec.data === undefined ? undefined : copySchema(spec.data), true)
    }
    channel.messages[replyId] = {
      name: `${type}.reply`,
      title: `Reply to ${type}`,
      summary: 'Sent when the message carried an `id`.',
      payload: replySchema(spec.reply === undefined ? undefined : copySchema(spec.reply))
    }
    operations[unique(operationIds, `${channelId}.send.${id}`)] = {
      action: 'send',
      channel: channelRef,
      title: `Send ${type}`,
      summary: 'A request when it carries an `id`: answered by a reply or an error with that id.',
      messages: [ref(id)],
      reply: { channel: channelRef, messages: [ref(replyId), ref('error')] }
    }
  }
  const events: Record<string, unknown> = { ...route.events }
  const presence = route.presence
  if (typeof presence === 'object' && presence.events === true) events.presence = PRESENCE_EVENT
  const recovery = route.recovery !== undefined && route.recovery !== false
  if (recovery) {
    const id = unique(messageIds, 'session')
    channel.messages[id] = {
      name: 'session',
      title: 'Session',
      summary: 'The first frame: the session id to resume with (`?resume=<id>&pos=<last pos>`), and whether this connection resumed one.',
      payload: envelope('session', SESSION_DATA, false)
    }
    operations[unique(operationIds, `${channelId}.receive.session`)] = { action: 'receive', channel: channelRef, title: 'Receive the session', messages: [ref(id)] }
  }
  for (const [name, schema] of Object.entries(events)) {
    const id = unique(messageIds, `${identifier(name)}.event`)
    const payload = envelope(name, copySchema(schema), false)
    // A broadcast carries its position in the route's history; a frame to one connection does not.
    if (recovery) (payload.properties as Schema).pos = POSITION
    channel.messages[id] = { name, title: name, payload }
    operations[unique(operationIds, `${channelId}.receive.${identifier(name)}`)] = {
      action: 'receive',
      channel: channelRef,
      title: `Receive ${name}`,
      messages: [ref(id)]
    }
  }
  operations[unique(operationIds, `${channelId}.send.ping`)] = {
    action: 'send',
    channel: channelRef,
    title: 'Ping',
    summary: 'An application-level liveness check, answered by pong (with the id, if any).',
    messages: [ref('ping')],
    reply: { channel: channelRef, messages: [ref('pong')] }
  }
  operations[unique(operationIds, `${channelId}.receive.error`)] = {
    action: 'receive',
    channel: channelRef,
    title: 'Receive an error',
    summary: 'An error answer; without an id when the frame carried none (e.g. BAD_JSON).',
    messages: [ref('error')]
  }
}

const SESSION_DATA: Schema = {
  type: 'object',
  required: ['id', 'recovered'],
  properties: {
    id: { type: 'string', pattern: '^[A-Za-z0-9_-]{22}$', description: 'The session id (128 random bits, base64url)' },
    recovered: { type: 'boolean', description: 'Whether the lost session came back, with its rooms and every event it missed' }
  }
}

const POSITION: Schema = {
  type: 'string',
  pattern: '^[0-9a-f]{16}-[0-9]+$',
  description: "The event's position in the route's history, on broadcasts: opaque; a client keeps the last one to resume with"
}

/** A frame `{"type": type, "data", "id"?}`; `data` required when it has a schema. */
function envelope (type: string, data: Schema | undefined, withId: boolean): Schema {
  const properties: Schema = { type: { type: 'string', const: type } }
  if (data !== undefined) properties.data = data
  if (withId) properties.id = REQUEST_ID
  return { type: 'object', required: data === undefined ? ['type'] : ['type', 'data'], properties }
}

function replySchema (data: Schema | undefined): Schema {
  return {
    type: 'object',
    required: ['type', 'id', 'data'],
    properties: {
      type: { type: 'string', const: 'reply' },
      id: REQUEST_ID,
      data: data ?? { description: 'No reply schema: null, unless the handler returns a value' }
    }
  }
}

function errorFrameSchema (): Schema {
  return {
    type: 'object',
    required: ['type', 'error'],
    properties: {
      type: { type: 'string', const: 'error' },
      id: { ...REQUEST_ID, description: 'The id of the message answered, when it carried one' },
      error: {
        type: 'object',
        required: ['code', 'message'],
        properties: {
          code: {
            anyOf: [
              { type: 'string', enum: Object.values(WireErrorCode), description: "The protocol's codes" },
              { type: 'string', description: "An application's own code (a RealtimeError thrown by a handler or hook)" }
            ]
          },
          message: { type: 'string' },
          details: {
            type: 'array',
            description: 'Where validation failed',
            items: {
              type: 'object',
              required: ['path', 'message'],
              properties: { path: { type: 'string', description: 'JSON Pointer into data (or the envelope)' }, message: { type: 'string' } }
            }
          }
        }
      }
    }
  }
}

const REQUEST_ID_SCHEMA = {
  description: 'Chosen by the client; echoed in the one answer (reply or error) to the message.',
  anyOf: [{ type: 'string', maxLength: MAX_ID_LENGTH }, { type: 'number' }]
}

const PRESENCE_EVENT = {
  type: 'object',
  required: ['action', 'room', 'connectionId', 'userId'],
  properties: {
    action: { type: 'string', enum: ['join', 'leave'] },
    room: { type: 'string' },
    connectionId: { type: 'string' },
    userId: { type: ['string', 'null'] }
  }
}

const PROTOCOL_DESCRIPTION = [
  'Each WebSocket text frame is one JSON object, `{"type", "data", "id"?}`.',
  'A message with an `id` is a request: it is answered once, by `{"type":"reply","id","data"}` or',
  '`{"type":"error","id","error":{"code","message","details"?}}`. Written from the client\'s side:',
  '`send` operations are messages a client sends, `receive` operations events it receives.',
  '',
  'Close codes (also in `x-close-codes`):',
  '',
  '| code | name | reconnect |',
  '| --- | --- | --- |',
  ...Object.entries(CloseCode).map(([name, code]) => `| ${code} | ${name} | ${closeCodeAllowsReconnect(code) ? 'yes' : 'no'} |`)
].join('\n')

/**
 * A copy of a schema as plain JSON: TypeBox's markers (non-enumerable
 * `~kind` keys, symbol keys) and anything that is not JSON are left out.
 */
export function copySchema (value: unknown): Schema {
  const copy = copyJson(value, 0)
  return copy !== null && typeof copy === 'object' && !Array.isArray(copy) ? copy as Schema : {}
}

function copyJson (value: unknown, depth: number): unknown {
  if (depth > 64) return {}
  if (Array.isArray(value)) return value.map((item) => copyJson(item, depth + 1))
  if (value === null || typeof value !== 'object') {
    return typeof value === 'function' || typeof value === 'symbol' || typeof value === 'bigint' ? undefined : value
  }
  const copy: Record<string, unknown> = {}
  for (const key of Object.keys(value)) {
    const item = copyJson((value as Record<string, unknown>)[key], depth + 1)
    if (item !== undefined) copy[key] = item
  }
  return copy
}

/** An object schema for the ws binding; a bare map of properties (Fastify accepts one) is wrapped. */
function objectSchema (value: unknown): Schema {
  const schema = copySchema(value)
  return schema.type === undefined && schema.properties === undefined ? { type: 'object', properties: schema } : schema
}

/** An AsyncAPI component key (`^[A-Za-z0-9_.-]+$`). */
function identifier (text: string): string {
  return text.replace(/[^A-Za-z0-9_.-]+/g, '_')
}

function unique (taken: Set<string>, id: string): string {
  let candidate = id
  for (let n = 2; taken.has(candidate); n++) candidate = `${id}_${n}`
  taken.add(candidate)
  return candidate
}
