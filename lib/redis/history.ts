import { createHash } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { BroadcastPacket } from '../broker.js'
import { FST_RT_BROKER_UNAVAILABLE } from '../errors.js'
import {
  formatPosition, newEpoch, parsePosition, typeEnd,
  type History, type HistoryOptions, type ResumeOutcome, type SequencedPacket, type SessionHolder
} from '../history.js'
import { withTimeout, type RedisClient } from './connection.js'
import { historyHeader } from './wire.js'

/*
 * A namespace's history in Redis, shared by every instance. Its keys and its
 * channel hash to one slot (a Redis Cluster keeps it on one shard):
 *
 *   {<channel>}:meta        hash: e = epoch, s = last seq
 *   {<channel>}:log         stream of the last maxEvents events, ids 0-<seq>
 *   {<channel>}:s:<session> a session: user, connection id, rooms, start
 *
 * where <channel> is the namespace's pub/sub channel. One script appends an
 * event and publishes it with its position on that channel, so the order of
 * the stream is the order every instance delivers in, the appending one
 * included (it does not deliver before Redis has ordered the event). Redis
 * restarted without the data, or the meta key lost, starts a new epoch:
 * positions of the old one are refused, never silently short.
 */

// The history's epoch (KEYS[1] meta, KEYS[2] log); a history without one (new, or a Redis that lost
// its data) starts a new epoch, `fresh`, from an empty log.
const EPOCH = `
local function epochOf (fresh)
  local epoch = redis.call('HGET', KEYS[1], 'e')
  if epoch then return epoch end
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', fresh, 's', 0)
  return fresh
end`

// KEYS: meta, log. ARGV: epoch if new, maxEvents, channel, header (after '{'), the frame up to its type's end and after it,
// PUBLISH or SPUBLISH.
const APPEND = `
${EPOCH}
local epoch = epochOf(ARGV[1])
local seq = redis.call('HINCRBY', KEYS[1], 's', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '0-' .. seq, 'h', ARGV[4], 'a', ARGV[5], 'b', ARGV[6])
redis.call(ARGV[7], ARGV[3], 'v1\\n{"p":' .. seq .. ',' .. ARGV[4] .. '\\n' .. ARGV[5] .. ',"pos":"' .. epoch .. '-' .. seq .. '"' .. ARGV[6])
return seq
`

// KEYS: meta, log, session. ARGV: "<user>\\n<connection>\\n<rooms>", window, epoch if new, start ('' = keep or now).
const SAVE = `
${EPOCH}
local start = ARGV[4]
if start == '' then
  local old = redis.call('GET', KEYS[3])
  if old then start = string.match(old, '\\n([^\\n]*)$') end
end
if not start or start == '' then
  start = epochOf(ARGV[3]) .. '-' .. redis.call('HGET', KEYS[1], 's')
end
redis.call('SET', KEYS[3], ARGV[1] .. '\\n' .. start, 'PX', ARGV[2])
return 1
`

// KEYS: meta, log, session. ARGV: user, position ('' = the session's start).
// Takes the session only when it is recovered; answers why not otherwise.
const RESUME = `
local value = redis.call('GET', KEYS[3])
if not value then return {'unknown session'} end
local user, conn, rooms, start = string.match(value, '^([^\\n]*)\\n([^\\n]*)\\n([^\\n]*)\\n([^\\n]*)$')
if user ~= ARGV[1] then return {'another user'} end
local epoch = redis.call('HGET', KEYS[1], 'e')
local position = ARGV[2]
if position == '' then position = start end
local pe, ps = string.match(position, '^(%x+)-(%d+)$')
local se, ss = string.match(start, '^(%x+)-(%d+)$')
if not pe or not se then return {'malformed'} end
if pe ~= epoch or se ~= epoch then return {'another epoch'} end
ps = tonumber(ps)
local head = tonumber(redis.call('HGET', KEYS[1], 's'))
if ps > head then return {'position from the future'} end
if ps < tonumber(ss) then return {'position before the session'} end
local entries = {}
if ps < head then
  local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
  if #first == 0 or tonumber(string.sub(first[1][1], 3)) > ps + 1 then return {'history trimmed'} end
  entries = redis.call('XRANGE', KEYS[2], '(0-' .. ps, '+')
end
redis.call('DEL', KEYS[3])
return {'ok', conn, rooms, start, epoch, entries}
`

class Script {
  readonly #source: string
  readonly #sha: string

  constructor (source: string) {
    this.#source = source
    this.#sha = createHash('sha1').update(source).digest('hex')
  }

  /** EVALSHA, loading the script with EVAL when Redis does not know it (a restart, a failover). */
  run (client: RedisClient, keys: string[], args: Array<string | number>): Promise<unknown> {
    return (client.evalsha(this.#sha, keys.length, ...keys, ...args) as Promise<unknown>).catch((err: Error) => {
      if (!err.message.startsWith('NOSCRIPT')) throw err
      return client.eval(this.#source, keys.length, ...keys, ...args) as Promise<unknown>
    })
  }
}

const append = new Script(APPEND)
const save = new Script(SAVE)
const resume = new Script(RESUME)

export interface RedisHistoryOptions extends HistoryOptions {
  readonly client: RedisClient
  /** The namespace's pub/sub channel; the keys are named after it. */
  readonly channel: string
  readonly namespace: string
  readonly instanceId: string
  readonly sharded: boolean
  /** Milliseconds a command may take before it fails with FST_RT_BROKER_UNAVAILABLE. */
  readonly timeout: number
  readonly log: FastifyBaseLogger
  /** Whether the broker reaches Redis now. */
  readonly up: () => boolean
}

interface Pending {
  readonly holder: SessionHolder
  /** The rooms it closed in; undefined while live. */
  rooms: readonly string[] | undefined
  start: string
}

/** The Redis history of one namespace (see the top of this file). */
export class RedisHistory implements History {
  readonly #options: RedisHistoryOptions
  readonly #meta: string
  readonly #log: string
  readonly #sessionPrefix: string
  // Live sessions of this instance, refreshed within the window so that one lost with its instance can still come back.
  readonly #live = new Map<string, Pending>()
  // Sessions to write at the next flush.
  readonly #dirty = new Map<string, Pending>()
  #flushScheduled = false
  #flushing: Promise<void> | undefined
  readonly #refresh: NodeJS.Timeout

  constructor (options: RedisHistoryOptions) {
    this.#options = options
    const tag = `{${options.channel}}`
    this.#meta = `${tag}:meta`
    this.#log = `${tag}:log`
    this.#sessionPrefix = `${tag}:s:`
    this.#refresh = setInterval(() => this.#refreshLive(), Math.max(1000, Math.floor(options.window / 3)))
    this.#refresh.unref()
  }

  append (packet: BroadcastPacket): Promise<void> {
    const options = this.#options
    if (!options.up()) return Promise.reject(new FST_RT_BROKER_UNAVAILABLE('Redis is not connected'))
    return appendToHistory(options, packet)
  }

  opened (session: SessionHolder, start = ''): void {
    const pending: Pending = { holder: session, rooms: undefined, start }
    this.#live.set(session.sessionId!, pending)
    this.#mark(pending)
  }

  changed (session: SessionHolder): void {
    const pending = this.#live.get(session.sessionId!)
    if (pending?.holder === session) this.#mark(pending)
  }

  closed (session: SessionHolder, rooms: ReadonlySet<string> | readonly string[]): void {
    const pending = this.#live.get(session.sessionId!)
    if (pending?.holder !== session) return
    this.#live.delete(session.sessionId!)
    pending.rooms = [...rooms]
    this.#mark(pending)
  }

  async resume (sessionId: string, userId: string | undefined, position: string | undefined): Promise<ResumeOutcome> {
    const options = this.#options
    if (position !== undefined && parsePosition(position) === undefined) return { recovered: false, reason: 'malformed' }
    if (!options.up()) return { recovered: false, reason: 'history unavailable' }
    const answer = await withTimeout(resume.run(options.client, [this.#meta, this.#log, this.#sessionPrefix + sessionId],
      [JSON.stringify(userId ?? null), position ?? '']), options.timeout, 'history resume not answered') as unknown[]
    if (answer[0] !== 'ok') return { recovered: false, reason: answer[0] as Exclude<ResumeOutcome, { recovered: true }>['reason'] }
    const [, connectionId, rooms, start, epoch, entries] = answer as [string, string, string, string, string, Array<[string, string[]]>]
    return {
      recovered: true,
      connectionId,
      rooms: JSON.parse(rooms) as string[],
      start,
      entries: entries.map(([id, fields]) => this.#entry(epoch, id, fields))
    }
  }

  async close (): Promise<void> {
    clearInterval(this.#refresh)
    await this.#flushing
    await this.#flush()
    this.#live.clear()
  }

  #entry (epoch: string, id: string, fields: string[]): SequencedPacket {
    let header = ''
    let head = ''
    let tail = ''
    for (let i = 0; i < fields.length; i += 2) {
      if (fields[i] === 'h') header = fields[i + 1]!
      else if (fields[i] === 'a') head = fields[i + 1]!
      else if (fields[i] === 'b') tail = fields[i + 1]!
    }
    const { r, x } = JSON.parse('{' + header) as { r: string[], x: string[] }
    const seq = Number(id.slice(2))
    return { namespace: this.#options.namespace, rooms: r, except: x, seq, frame: head + ',"pos":"' + formatPosition(epoch, seq) + '"' + tail }
  }

  #mark (pending: Pending): void {
    this.#dirty.set(pending.holder.sessionId!, pending)
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    // One write per session per tick, however many rooms it joined in it.
    setImmediate(() => {
      this.#flushScheduled = false
      const flushing = this.#flush()
      this.#flushing = flushing
      flushing.finally(() => { if (this.#flushing === flushing) this.#flushing = undefined }).catch(noop)
    })
  }

  #refreshLive (): void {
    if (this.#live.size === 0) return
    for (const pending of this.#live.values()) this.#dirty.set(pending.holder.sessionId!, pending)
    void this.#flush()
  }

  async #flush (): Promise<void> {
    if (this.#dirty.size === 0) return
    const options = this.#options
    const batch = [...this.#dirty.values()]
    this.#dirty.clear()
    if (!options.up()) {
      options.log.debug({ sessions: batch.length, namespace: options.namespace }, 'realtime sessions not saved: Redis is not connected')
      return
    }
    const writes = batch.map((pending) => {
      const { holder } = pending
      const rooms = pending.rooms ?? [...holder.rooms]
      const value = JSON.stringify(holder.userId ?? null) + '\n' + holder.id + '\n' + JSON.stringify(rooms)
      const start = pending.start
      // The start is written once; later writes keep it.
      pending.start = ''
      return save.run(options.client, [this.#meta, this.#log, this.#sessionPrefix + holder.sessionId!],
        [value, options.window, newEpoch(), start])
    })
    const results = await Promise.allSettled(writes.map((write) => withTimeout(write, options.timeout, 'session save not answered')))
    const failed = results.find((result) => result.status === 'rejected')
    if (failed !== undefined) {
      options.log.warn({ err: (failed as PromiseRejectedResult).reason, namespace: options.namespace }, 'realtime could not save sessions; they will not be resumable')
    }
  }
}

/** What appending to a namespace's history takes: the servers' and an emitter's. */
export interface AppendOptions {
  readonly client: RedisClient
  readonly channel: string
  readonly instanceId: string
  readonly maxEvents: number
  readonly sharded: boolean
  readonly timeout: number
}

/** Appends a broadcast to its namespace's history and publishes it with its position (the script above). */
export function appendToHistory (options: AppendOptions, packet: BroadcastPacket): Promise<void> {
  const tag = `{${options.channel}}`
  const header = historyHeader(options.instanceId, packet)
  const frame = typeof packet.frame === 'string' ? packet.frame : packet.frame.toString()
  const end = typeEnd(frame)
  const done = append.run(options.client, [`${tag}:meta`, `${tag}:log`],
    [newEpoch(), options.maxEvents, options.channel, header, frame.slice(0, end), frame.slice(end), options.sharded ? 'SPUBLISH' : 'PUBLISH'])
  return withTimeout(done, options.timeout, `history append not answered within ${options.timeout} ms`).then(noop, unavailable)
}

function unavailable (err: Error & { code?: string }): never {
  throw err.code === 'FST_RT_BROKER_UNAVAILABLE' ? err : new FST_RT_BROKER_UNAVAILABLE(err.message)
}

function noop (): void {}
