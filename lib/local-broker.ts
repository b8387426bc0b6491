import { RESOLVED, type Broker, type BroadcastPacket, type UserCommand } from './broker.js'

/** The default broker: one process. The core delivers locally, so there is nothing to carry. */
export class LocalBroker implements Broker {
  readonly kind: string = 'memory'
  readonly status = 'up' as const

  async start (): Promise<void> {}
  publish (_packet: BroadcastPacket): Promise<void> { return RESOLVED }
  publishUserCommand (_command: UserCommand): Promise<void> { return RESOLVED }
  roomCreated (_namespace: string, _room: string): Promise<void> { return RESOLVED }
  roomEmptied (_namespace: string, _room: string): void {}
  namespaceCreated (_namespace: string): Promise<void> { return RESOLVED }
  namespaceEmptied (_namespace: string): void {}
  async close (): Promise<void> {}
}
