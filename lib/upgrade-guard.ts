import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http'
import type { Duplex } from 'node:stream'
import { performance } from 'node:perf_hooks'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { FST_RT_CLOSING, FST_RT_UPGRADE_TIMEOUT } from './errors.js'
import { closeInjectedStreamOnEnd } from './inject.js'
import { kOriginalUrl, kUpgradeTimer } from './symbols.js'

/*
 * What runs on an upgrade request before Fastify routes it: a deadline for
 * its hooks, and redaction of secrets in its query string. The listener is
 * prepended to the server's 'upgrade' listeners, so it runs before
 * @fastify/websocket hands the request to Fastify (which logs its URL).
 */

type UpgradeRequest = IncomingMessage & {
  [kUpgradeTimer]?: Deadline
  [kOriginalUrl]?: string
}

/** An upgrade's deadline, listed in its guard's queue until the upgrade is done or refused. */
interface Deadline {
  readonly at: number
  readonly request: UpgradeRequest
  readonly socket: Duplex
  readonly queue: Set<Deadline>
}

const REDACTED = '[REDACTED]'

export interface UpgradeGuardOptions {
  /** Whether the app is shutting down: new upgrades are refused at once. */
  closing: () => boolean
  upgradeTimeout: number
  redactQueryParams: readonly string[]
  log: FastifyBaseLogger
}

/** Installs the guard; returns the function that removes it. */
export function installUpgradeGuard (server: Server, options: UpgradeGuardOptions): () => void {
  const { upgradeTimeout, redactQueryParams, log } = options
  const redact = redactQueryParams.length > 0 ? new Set(redactQueryParams) : undefined
  // Every upgrade has the same timeout, so deadlines come due in the order
  // they were set: one queue and one timer for all of them, not a timer
  // and a 'close' listener per upgrade. An upgrade whose client leaves
  // during the hooks stays listed until its deadline, then is skipped.
  const queue = new Set<Deadline>()
  let timer: NodeJS.Timeout | undefined

  function expire (): void {
    timer = undefined
    const now = performance.now()
    for (const deadline of queue) {
      if (deadline.at > now) {
        arm(deadline.at - now)
        return
      }
      refuseUpgrade(deadline, log)
    }
  }

  function arm (ms: number): void {
    timer = setTimeout(expire, Math.max(1, Math.ceil(ms)))
    timer.unref()
  }

  function onUpgrade (request: UpgradeRequest, socket: Duplex): void {
    closeInjectedStreamOnEnd(request, socket)
    if (options.closing()) {
      // Fastify would answer 503 too, but leave the socket open: a client that
      // keeps it open would hold app.close() forever.
      refuse(socket, new FST_RT_CLOSING())
      return
    }
    if (redact !== undefined) redactUrl(request, redact)
    if (upgradeTimeout === 0) return
    const deadline: Deadline = { at: performance.now() + upgradeTimeout, request, socket, queue }
    request[kUpgradeTimer] = deadline
    queue.add(deadline)
    if (timer === undefined) arm(upgradeTimeout)
  }

  server.prependListener('upgrade', onUpgrade)
  return () => {
    server.removeListener('upgrade', onUpgrade)
    clearTimeout(timer)
    timer = undefined
    for (const deadline of queue) deadline.request[kUpgradeTimer] = undefined
    queue.clear()
  }
}

/** The upgrade went through (or was answered): stop its deadline and let go of the request. */
export function clearUpgradeTimer (request: IncomingMessage): void {
  const upgrade = request as UpgradeRequest
  const deadline = upgrade[kUpgradeTimer]
  if (deadline === undefined) return
  upgrade[kUpgradeTimer] = undefined
  deadline.queue.delete(deadline)
}

/**
 * onResponse, every request: an upgrade answered with a status (refused by
 * a hook, or routed nowhere) is done; its deadline goes at once rather
 * than holding the request until it comes due.
 */
export function releaseAnsweredUpgrade (request: FastifyRequest, _reply: unknown, done: () => void): void {
  if ((request.raw as UpgradeRequest)[kUpgradeTimer] !== undefined) clearUpgradeTimer(request.raw)
  done()
}

function refuseUpgrade (deadline: Deadline, log: FastifyBaseLogger): void {
  const { request, socket } = deadline
  clearUpgradeTimer(request)
  if (socket.destroyed) return
  log.warn({ url: request.url }, 'realtime upgrade timed out in its hooks; refused with 503')
  // Nothing was written yet means no hook has answered: the status line is ours to send.
  if ((socket as Duplex & { bytesWritten?: number }).bytesWritten === 0) {
    refuse(socket, new FST_RT_UPGRADE_TIMEOUT())
  } else {
    socket.destroy()
  }
}

/**
 * Answers an upgrade with a plugin error as Fastify would (its status, and a
 * JSON body with its code and message), and closes the socket for good.
 */
function refuse (socket: Duplex, err: { code: string, message: string, statusCode?: number }): void {
  const { code, message } = err
  const statusCode = err.statusCode ?? 500
  const error = STATUS_CODES[statusCode] ?? 'Error'
  const body = JSON.stringify({ statusCode, code, error, message })
  socket.end(`HTTP/1.1 ${statusCode} ${error}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`, () => socket.destroy())
}

function redactUrl (request: UpgradeRequest, redact: ReadonlySet<string>): void {
  const url = request.url
  if (url === undefined) return
  const queryStart = url.indexOf('?')
  if (queryStart === -1) return
  let found = false
  const pairs = url.slice(queryStart + 1).split('&').map((pair) => {
    const equals = pair.indexOf('=')
    const key = equals === -1 ? pair : pair.slice(0, equals)
    if (!redact.has(safeDecode(key))) return pair
    found = true
    return `${key}=${REDACTED}`
  })
  if (!found) return
  request[kOriginalUrl] = url
  request.url = url.slice(0, queryStart + 1) + pairs.join('&')
}

function safeDecode (text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '))
  } catch {
    return text
  }
}

/**
 * onRequest hook: puts the real URL and the real values of redacted
 * parameters back, after Fastify has logged the redacted URL.
 */
export function restoreRedactedUrl (request: FastifyRequest, redactQueryParams: readonly string[]): void {
  const raw = request.raw as UpgradeRequest
  const original = raw[kOriginalUrl]
  if (original === undefined) return
  raw[kOriginalUrl] = undefined
  raw.url = original
  const params = new URLSearchParams(original.slice(original.indexOf('?') + 1))
  const query = request.query as Record<string, unknown> | undefined
  if (query === null || typeof query !== 'object') return
  for (const key of redactQueryParams) {
    const values = params.getAll(key)
    if (values.length === 1) query[key] = values[0]
    else if (values.length > 1) query[key] = values
  }
}
