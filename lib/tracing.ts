import diagnosticsChannel from 'node:diagnostics_channel'
import type { Connection } from './connection.js'
import type { RequestId } from './protocol/envelope.js'

/*
 * Diagnostics channels, in the style of Fastify core's `tracing:fastify.request.handler`:
 * an APM or a test subscribes by name; nothing is built or published while
 * nobody listens (every site checks `hasSubscribers` first).
 */

/** The channel names, as published; docs/observability.md lists the same (test/docs.test.ts). */
export const CHANNELS = {
  /** A tracing channel: `tracing:fastify-realtime.message:start`, `:end`, `:asyncStart`, `:asyncEnd`, `:error`. */
  message: 'fastify-realtime.message',
  connectionOpen: 'fastify-realtime.connection.open',
  connectionClose: 'fastify-realtime.connection.close',
  brokerUp: 'fastify-realtime.broker.up',
  brokerDown: 'fastify-realtime.broker.down'
} as const

/** What the message tracing channel's subscribers receive, one object through start to asyncEnd. */
export interface MessageTraceContext {
  readonly connection: Connection<any, any>
  /** The route (namespace) path. */
  readonly route: string
  /** The message type, as declared on the route. */
  readonly type: string
  /** The request id, when the client sent one. */
  readonly id: RequestId | undefined
  /** The handler's return value (for a promise: on asyncStart, what it resolved to). */
  result?: unknown
  /** What the handler threw or rejected with (on error and after). */
  error?: unknown
}

/** `fastify-realtime.connection.open`: a connection has been accepted, before `onOpen`. */
export interface ConnectionOpenMessage {
  readonly connection: Connection<any, any>
  readonly route: string
}

/** `fastify-realtime.connection.close`: a connection has closed, before `onClose`. */
export interface ConnectionCloseMessage {
  readonly connection: Connection<any, any>
  readonly route: string
  readonly code: number
  readonly reason: string
}

/** `fastify-realtime.broker.up` / `.down`: the broker gained or lost the other instances. */
export interface BrokerStatusMessage {
  /** The broker's kind: `memory`, `redis`, or a custom broker's. */
  readonly broker: string
}

export const messageChannel = diagnosticsChannel.tracingChannel<object, MessageTraceContext>(CHANNELS.message)
export const connectionOpenChannel = diagnosticsChannel.channel(CHANNELS.connectionOpen)
export const connectionCloseChannel = diagnosticsChannel.channel(CHANNELS.connectionClose)
export const brokerUpChannel = diagnosticsChannel.channel(CHANNELS.brokerUp)
export const brokerDownChannel = diagnosticsChannel.channel(CHANNELS.brokerDown)

/** Runs a handler inside the message channel's start / end (and error, when it throws). */
export function traceHandler (context: MessageTraceContext, handler: (conn: any, data: unknown) => unknown,
  conn: Connection<any, any>, data: unknown): unknown {
  return messageChannel.start.runStores(context, () => {
    try {
      const result = handler(conn, data)
      context.result = result
      return result
    } catch (err) {
      context.error = err
      messageChannel.error.publish(context)
      throw err
    } finally {
      messageChannel.end.publish(context)
    }
  })
}

/** A handler's promise settled: error (when it rejected), then asyncStart and asyncEnd. */
export function traceSettled (context: MessageTraceContext, value: unknown, failed: boolean): void {
  if (failed) {
    context.error = value
    messageChannel.error.publish(context)
  } else {
    context.result = value
  }
  messageChannel.asyncStart.publish(context)
  messageChannel.asyncEnd.publish(context)
}
