import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Connection } from './connection.js'
import { FST_RT_CONNECTION_LIMIT, FST_RT_ORIGIN_FORBIDDEN, FST_RT_TOO_MANY_CONNECTIONS } from './errors.js'
import { normaliseOrigin } from './validate-options.js'

type AnyConnection = Connection<any, any>
type Hook = (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => void

export interface AdmissionLimits {
  maxConnections: number
  maxConnectionsPerUser: number
  maxConnectionsPerIp: number
  userId: (user: unknown) => string | undefined
}

/**
 * Who may open a connection: the connection caps (global, per user, per IP)
 * and the books they are checked against. Refusals happen in upgrade hooks,
 * so a refused client gets an HTTP status and never a 101.
 */
export class Admission {
  readonly #limits: AdmissionLimits
  readonly #count: () => number
  readonly #users = new Map<string, Set<AnyConnection>>()
  readonly #ips = new Map<string, number>()

  constructor (limits: AdmissionLimits, count: () => number) {
    this.#limits = limits
    this.#count = count
  }

  /** A connection opened. */
  add (conn: AnyConnection): void {
    this.#ips.set(conn.ip, (this.#ips.get(conn.ip) ?? 0) + 1)
    if (conn.userId === undefined) return
    let connections = this.#users.get(conn.userId)
    if (connections === undefined) this.#users.set(conn.userId, connections = new Set())
    connections.add(conn)
  }

  /** A connection is gone. */
  remove (conn: AnyConnection): void {
    const fromIp = this.#ips.get(conn.ip)
    if (fromIp !== undefined) {
      if (fromIp <= 1) this.#ips.delete(conn.ip)
      else this.#ips.set(conn.ip, fromIp - 1)
    }
    if (conn.userId === undefined) return
    const connections = this.#users.get(conn.userId)
    if (connections !== undefined && connections.delete(conn) && connections.size === 0) this.#users.delete(conn.userId)
  }

  /** The open connections of a user on this instance. */
  userConnections (userId: string): ReadonlySet<AnyConnection> | undefined {
    return this.#users.get(userId)
  }

  /** onRequest: the global and per-IP caps (503, 429). */
  readonly checkCapacity: Hook = (request, _reply, done) => {
    const { maxConnections, maxConnectionsPerIp } = this.#limits
    if (maxConnections > 0 && this.#count() >= maxConnections) {
      done(new FST_RT_TOO_MANY_CONNECTIONS())
    } else if (maxConnectionsPerIp > 0 && (this.#ips.get(request.ip) ?? 0) >= maxConnectionsPerIp) {
      done(new FST_RT_CONNECTION_LIMIT('IP address'))
    } else {
      done()
    }
  }

  /** preHandler, after the auth hooks have put the user on the request: the per-user cap (429). */
  readonly checkUserCapacity: Hook = (request, _reply, done) => {
    const userId = this.#limits.userId((request as { user?: unknown }).user)
    if (userId !== undefined && (this.#users.get(userId)?.size ?? 0) >= this.#limits.maxConnectionsPerUser) {
      done(new FST_RT_CONNECTION_LIMIT('user'))
    } else {
      done()
    }
  }
}

/** onRequest: refuses an Origin outside the allowlist with 403; requests without Origin pass. */
export function checkOrigin (allowed: ReadonlySet<string>): Hook {
  return function checkUpgradeOrigin (request, _reply, done) {
    const origin = request.headers.origin
    if (origin === undefined || allowed.has(normaliseOrigin(origin) ?? '')) {
      done()
      return
    }
    request.log.info({ origin }, 'realtime upgrade refused: origin not allowed')
    done(new FST_RT_ORIGIN_FORBIDDEN())
  }
}
