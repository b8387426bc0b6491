import type { FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import type { Connection } from './connection.js'
import { kAlive, kCleanup, kConnection, kReceive } from './symbols.js'

type SocketWithConnection = WebSocket & { [kConnection]?: Connection<any, any> }

/*
 * The socket's listeners are shared functions that find their connection
 * through the socket: no closure per connection.
 */

/**
 * Ties a freshly upgraded socket to its connection. Listeners go on before
 * anything awaits, or early frames would be lost.
 */
export function attachSocket (socket: WebSocket, conn: Connection<any, any>): void {
  (socket as SocketWithConnection)[kConnection] = conn
  socket.on('message', onSocketMessage)
  socket.on('pong', onSocketPong)
  socket.on('close', onSocketClose)
}

/*
 * After the upgrade, two references would keep the whole HTTP request and
 * reply alive for as long as the socket lives (about 1.5 KB each
 * connection): the response @fastify/websocket assigned to the TCP socket,
 * and its 'error' listener, a closure over request and reply. Let both go;
 * ours logs through the connection and holds nothing.
 */
export function releaseUpgradeObjects (socket: WebSocket, request: FastifyRequest): void {
  // An injected upgrade (app.injectWS) has no TCP socket.
  const tcp = request.raw.socket as (typeof request.raw.socket & { _httpMessage?: { detachSocket?: (s: unknown) => void } | null }) | undefined
  tcp?._httpMessage?.detachSocket?.(tcp)
  socket.removeAllListeners('error')
  socket.on('error', onSocketError)
}

function onSocketError (this: SocketWithConnection, err: Error): void {
  // ws closes the connection itself with the right code; this is for the logs.
  this[kConnection]?.log.debug({ err, connectionId: this[kConnection]?.id }, 'realtime socket error')
}

function onSocketMessage (this: SocketWithConnection, data: Buffer, isBinary: boolean): void {
  this[kConnection]![kReceive](data, isBinary)
}

function onSocketPong (this: SocketWithConnection): void {
  this[kConnection]![kAlive] = true
}

function onSocketClose (this: SocketWithConnection, code: number, reason: Buffer): void {
  this[kConnection]![kCleanup](code, reason.toString())
}
