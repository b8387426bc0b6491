import { RESOLVED, type Broker, type BrokerHost, type BroadcastPacket, type UserCommand } from './broker.js'

/** The default broker: one process, delivery straight to this instance's connections. */
export class LocalBroker implements Broker {
  readonly kind = 'memory'
  readonly status = 'up' as const
  #host: BrokerHost | undefined

  async start (host: BrokerHost): Promise<void> {
    this.#host = host
  }

  publish (packet: BroadcastPacket): Promise<void> {
    this.#host?.deliver(packet)
    return RESOLVED
  }

  publishUserCommand (command: UserCommand): Promise<void> {
    this.#host?.applyUserCommand(command)
    return RESOLVED
  }

  roomCreated (): Promise<void> { return RESOLVED }
  roomEmptied (): void {}
  namespaceCreated (): Promise<void> { return RESOLVED }
  namespaceEmptied (): void {}

  async close (): Promise<void> {
    this.#host = undefined
  }
}
