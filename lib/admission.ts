import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Connection } from './connection.js'
import { FST_RT_CONNECTION_LIMIT, FST_RT_ORIGIN_FORBIDDEN, FST_RT_TOO_MANY_CONNECTIONS } from './errors.js'
import { kReservation } from './symbols.js'
import { normaliseOrigin, type OriginPolicy } from './validate-options.js'

type AnyConnection = Connection<any, any>
type Hook = (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => void

export interface AdmissionLimits {
  maxConnections: number
  maxConnectionsPerUser: number
  maxConnectionsPerIp: number
  userId: (user: unknown) => string | undefined
}

/** The place an upgrade holds from its cap check until its TCP connection ends. */
interface Reservation {
  readonly admission: Admission
  readonly ip: string
  userId: string | undefined
}

type ReservedSocket = NonNullable<FastifyRequest['raw']['socket']> & { [kReservation]?: Reservation }

/**
 * Who may open a connection: the connection caps (global, per user, per IP)
 * and the books they are checked against. Refusals happen in upgrade hooks,
 * so a refused client gets an HTTP status and never a 101.
 *
 * A cap holds at every instant, concurrent upgrades included: the upgrade
 * that passes a cap check reserves its place there and then, and gives it
 * back when its TCP connection ends, whatever ends it (a later hook
 * refuses, the client aborts, the upgrade times out, the WebSocket closes).
 */
export class Admission {
  readonly #limits: AdmissionLimits
  readonly #enabled: boolean
  #connections = 0
  readonly #ips = new Map<string, number>()
  readonly #userCounts = new Map<string, number>()
  readonly #users = new Map<string, Set<AnyConnection>>()

  constructor (limits: AdmissionLimits) {
    this.#limits = limits
    this.#enabled = limits.maxConnections > 0 || limits.maxConnectionsPerIp > 0 || limits.maxConnectionsPerUser > 0
  }

  /** Whether any cap is set: without one, no upgrade needs a place checked or reserved. */
  get enabled (): boolean {
    return this.#enabled
  }

  /** A connection opened: listed for userConnections() (its place was reserved at the upgrade). */
  add (conn: AnyConnection): void {
    if (conn.userId === undefined) return
    let connections = this.#users.get(conn.userId)
    if (connections === undefined) this.#users.set(conn.userId, connections = new Set())
    connections.add(conn)
  }

  /** A connection is gone. */
  remove (conn: AnyConnection): void {
    if (conn.userId === undefined) return
    const connections = this.#users.get(conn.userId)
    if (connections !== undefined && connections.delete(conn) && connections.size === 0) this.#users.delete(conn.userId)
  }

  /** The open connections of a user on this instance. */
  userConnections (userId: string): ReadonlySet<AnyConnection> | undefined {
    return this.#users.get(userId)
  }

  /** Places held now (upgrades under way and open connections), and the IPs and users holding them. */
  size (): { connections: number, ips: number, users: number } {
    return { connections: this.#connections, ips: this.#ips.size, users: this.#userCounts.size }
  }

  /** onRequest: the global and per-IP caps (503, 429); reserves the place. */
  readonly checkCapacity: Hook = (request, _reply, done) => {
    const socket = request.raw.socket as ReservedSocket | undefined
    // A plain GET (answered 404) holds no place; nor does a client already gone.
    if (!this.#enabled || (request as { ws?: boolean }).ws !== true || socket == null || socket.destroyed) {
      done()
      return
    }
    const { maxConnections, maxConnectionsPerIp } = this.#limits
    const ip = request.ip
    if (maxConnections > 0 && this.#connections >= maxConnections) {
      done(new FST_RT_TOO_MANY_CONNECTIONS())
      return
    }
    if (maxConnectionsPerIp > 0 && (this.#ips.get(ip) ?? 0) >= maxConnectionsPerIp) {
      done(new FST_RT_CONNECTION_LIMIT('IP address'))
      return
    }
    if (socket[kReservation] === undefined) {
      this.#connections++
      this.#ips.set(ip, (this.#ips.get(ip) ?? 0) + 1)
      socket[kReservation] = { admission: this, ip, userId: undefined }
      // 'end': a client that gives up during the hooks half-closes, and the
      // server socket stays open until the hooks finish; its place is free at once.
      socket.once('end', releaseReservation)
      socket.once('close', releaseReservation)
    }
    done()
  }

  /** preHandler, after the auth hooks have put the user on the request: the per-user cap (429); reserves the user's place. */
  readonly checkUserCapacity: Hook = (request, _reply, done) => {
    const reservation = (request.raw.socket as ReservedSocket | undefined)?.[kReservation]
    const userId = this.#limits.userId((request as { user?: unknown }).user)
    if (reservation === undefined || reservation.userId !== undefined || userId === undefined) {
      done()
      return
    }
    const count = this.#userCounts.get(userId) ?? 0
    if (count >= this.#limits.maxConnectionsPerUser) {
      done(new FST_RT_CONNECTION_LIMIT('user'))
      return
    }
    this.#userCounts.set(userId, count + 1)
    reservation.userId = userId
    done()
  }

  /** Gives a reservation's places back. */
  release (reservation: Reservation): void {
    this.#connections--
    decrement(this.#ips, reservation.ip)
    if (reservation.userId !== undefined) decrement(this.#userCounts, reservation.userId)
  }
}

// One listener function for every reserved socket: no closure per connection.
function releaseReservation (this: ReservedSocket): void {
  const reservation = this[kReservation]
  if (reservation === undefined) return
  this[kReservation] = undefined
  this.off('end', releaseReservation)
  this.off('close', releaseReservation)
  reservation.admission.release(reservation)
}

function decrement (counts: Map<string, number>, key: string): void {
  const count = counts.get(key)
  if (count === undefined) return
  if (count <= 1) counts.delete(key)
  else counts.set(key, count - 1)
}

/**
 * onRequest: refuses an upgrade whose Origin the policy does not allow with
 * 403. Requests without Origin (non-browser clients) pass.
 */
export function checkOrigin (policy: OriginPolicy): Hook {
  return function checkUpgradeOrigin (request, _reply, done) {
    const origin = request.headers.origin
    if (origin === undefined || originAllowed(policy, origin, request)) {
      done()
      return
    }
    request.log.info({ origin }, 'realtime upgrade refused: origin not allowed')
    done(new FST_RT_ORIGIN_FORBIDDEN())
  }
}

function originAllowed (policy: OriginPolicy, origin: string, request: FastifyRequest): boolean {
  const normalised = normaliseOrigin(origin)
  if (normalised === undefined) return false
  if (policy === '*') return true
  if (policy !== 'same-host') return policy.has(normalised)
  // Same host: the Origin's host[:port] is the request's Host (X-Forwarded-Host
  // under trustProxy), default ports left out on both sides. Schemes are not
  // compared, so a TLS-terminating proxy works without trustProxy.
  const host = requestHost(request)
  return host !== undefined && host === new URL(normalised).host
}

/** The request's host[:port] as a URL writes it (lower case, no default port), or undefined. */
function requestHost (request: FastifyRequest): string | undefined {
  const host = request.host
  if (typeof host !== 'string' || host.length === 0) return undefined
  try {
    const url = new URL(`${request.protocol === 'https' ? 'https' : 'http'}://${host}`)
    if (url.pathname !== '/' || url.username !== '' || url.search !== '' || url.hash !== '') return undefined
    return url.host
  } catch {
    return undefined
  }
}
