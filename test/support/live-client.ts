import { setTimeout as delay } from 'node:timers/promises'
import WebSocket from 'ws'
import type { FastifyInstance } from 'fastify'
import { opened, wsUrl, type TestClient, type TestContext } from '../helper.js'

/*
 * A bare `ws` client of the /live test route (fixtures/live-route.ts), which
 * speaks session recovery with only the documented frames and parameters.
 */

export interface Session { id: string, recovered: boolean }

export async function sessionFrame (client: TestClient): Promise<Session> {
  const frame = await client.next()
  if (frame.type !== 'session') throw new Error(`expected the session frame first, got ${JSON.stringify(frame)}`)
  return frame.data
}

export interface Member extends Session { client: TestClient }

/** Opens /live as `user` (with `query`, e.g. a resume), reads the session frame, and joins `rooms` when not recovered. */
export async function liveMember (t: TestContext, app: FastifyInstance, user: string, rooms: string[], query = ''): Promise<Member> {
  const client = await opened(t, new WebSocket(wsUrl(app, `/live?user=${user}${query}`)))
  const session = await sessionFrame(client)
  if (!session.recovered) {
    for (const room of rooms) t.match(await client.request('join', { room }), { type: 'reply', data: null })
  }
  return { client, ...session }
}

export function resumeQuery (session: string, pos?: string): string {
  return `&resume=${encodeURIComponent(session)}` + (pos === undefined ? '' : `&pos=${encodeURIComponent(pos)}`)
}

/** Pushes `count` updates to `room` through `app` at about `rate` per second (in steps of 10 ms). */
export async function pushUpdates (app: FastifyInstance, room: string, from: number, count: number, rate: number): Promise<void> {
  const perStep = Math.max(1, Math.round(rate / 100))
  const ns = app.realtime.namespace('/live')
  for (let seq = from; seq < from + count; seq++) {
    await ns.to(room).emit('update', { room, seq, text: `u${seq}` })
    if ((seq - from + 1) % perStep === 0) await delay(10)
  }
}

/** Reads frames until the update with seq `last`; returns the updates' seqs. Fails on any other frame or an update without pos. */
export async function seqsUntil (t: TestContext, client: TestClient, last: number): Promise<number[]> {
  const seqs: number[] = []
  const odd: unknown[] = []
  for (;;) {
    const frame = await client.next()
    if (frame.type !== 'update' || typeof frame.pos !== 'string') odd.push(frame)
    else seqs.push(frame.data.seq)
    if (frame.data?.seq === last) break
  }
  t.same(odd, [], 'nothing but updates with a pos')
  return seqs
}

export const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i)
