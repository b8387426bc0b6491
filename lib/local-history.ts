import { RESOLVED, type BroadcastPacket } from './broker.js'
import {
  formatPosition, newEpoch, parsePosition, withPosition,
  type History, type HistoryOptions, type ResumeOutcome, type SequencedPacket, type SessionHolder
} from './history.js'
import { CloseCode } from './protocol/close-codes.js'

interface LostSession {
  readonly userId: string | undefined
  readonly connectionId: string
  readonly rooms: readonly string[]
  readonly start: string
  readonly expires: number
}

interface LiveSession {
  readonly holder: SessionHolder
  readonly start: string
}

/**
 * A namespace's history in this process (no broker, or one without a shared
 * history): a ring of the last `maxEvents` events and the sessions lost less
 * than `window` ago. Positions carry this process's epoch, so a client that
 * comes back to another process, or after a restart, gets a fresh session.
 */
export class LocalHistory implements History {
  readonly #options: HistoryOptions
  readonly #deliver: (packet: SequencedPacket) => void
  readonly #epoch = newEpoch()
  // A ring of the last maxEvents events: #ring[seq % maxEvents].
  readonly #ring: SequencedPacket[] = []
  #head = 0
  readonly #live = new Map<string, LiveSession>()
  // In the order they were lost, which is the order they expire.
  readonly #lost = new Map<string, LostSession>()

  constructor (options: HistoryOptions, deliver: (packet: SequencedPacket) => void) {
    this.#options = options
    this.#deliver = deliver
  }

  append (packet: BroadcastPacket): Promise<void> {
    const seq = ++this.#head
    const frame = typeof packet.frame === 'string' ? packet.frame : packet.frame.toString()
    const sequenced: SequencedPacket = {
      namespace: packet.namespace,
      rooms: packet.rooms,
      except: packet.except,
      seq,
      frame: withPosition(frame, formatPosition(this.#epoch, seq))
    }
    this.#ring[seq % this.#options.maxEvents] = sequenced
    this.#deliver(sequenced)
    return RESOLVED
  }

  opened (session: SessionHolder, start?: string): void {
    this.#live.set(session.sessionId!, { holder: session, start: start ?? formatPosition(this.#epoch, this.#head) })
  }

  changed (_session: SessionHolder): void {}

  closed (session: SessionHolder, rooms: ReadonlySet<string> | readonly string[]): void {
    const id = session.sessionId!
    const live = this.#live.get(id)
    // Taken over by a resume already: nothing left to keep.
    if (live?.holder !== session) return
    this.#live.delete(id)
    this.#expire(Date.now())
    this.#lost.set(id, {
      userId: session.userId,
      connectionId: session.id,
      rooms: [...rooms],
      start: live.start,
      expires: Date.now() + this.#options.window
    })
  }

  resume (sessionId: string, userId: string | undefined, position: string | undefined): Promise<ResumeOutcome> {
    return Promise.resolve(this.#resume(sessionId, userId, position))
  }

  #resume (sessionId: string, userId: string | undefined, position: string | undefined): ResumeOutcome {
    this.#expire(Date.now())
    const live = this.#live.get(sessionId)
    const lost = this.#lost.get(sessionId)
    const owner = live !== undefined ? live.holder.userId : lost?.userId
    if (live === undefined && lost === undefined) return { recovered: false, reason: 'unknown session' }
    if (owner !== userId) return { recovered: false, reason: 'another user' }
    const start = (live ?? lost)!.start
    const from = parsePosition(position ?? start)
    const begin = parsePosition(start)!
    if (from === undefined) return { recovered: false, reason: 'malformed' }
    if (from.epoch !== this.#epoch || begin.epoch !== this.#epoch) return { recovered: false, reason: 'another epoch' }
    if (from.seq > this.#head) return { recovered: false, reason: 'position from the future' }
    if (from.seq < begin.seq) return { recovered: false, reason: 'position before the session' }
    if (this.#head - from.seq > this.#options.maxEvents) return { recovered: false, reason: 'history trimmed' }
    const entries: SequencedPacket[] = []
    for (let seq = from.seq + 1; seq <= this.#head; seq++) entries.push(this.#ring[seq % this.#options.maxEvents]!)
    let connectionId: string
    let rooms: readonly string[]
    if (live !== undefined) {
      // The old connection has not noticed it is gone (a half-open TCP connection): the session moves on without it.
      this.#live.delete(sessionId)
      connectionId = live.holder.id
      rooms = [...live.holder.rooms]
      live.holder.close(CloseCode.SESSION_RESUMED, 'session resumed elsewhere')
    } else {
      this.#lost.delete(sessionId)
      connectionId = lost!.connectionId
      rooms = lost!.rooms
    }
    return { recovered: true, connectionId, rooms, start, entries }
  }

  async close (): Promise<void> {
    this.#live.clear()
    this.#lost.clear()
  }

  #expire (now: number): void {
    for (const [id, session] of this.#lost) {
      if (session.expires > now) break
      this.#lost.delete(id)
    }
  }
}
