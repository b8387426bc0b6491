/*
 * The wire protocol of docs/protocol.md, shared by the server and the
 * client: no Node and no package imports here, so a browser bundle of the
 * client carries only what it uses.
 */
export { CloseCode, closeCodeAllowsReconnect } from './close-codes.js'
export { WireErrorCode, RealtimeError, type WireErrorDetail } from './wire-errors.js'
export {
  encodeError, encodeEvent, encodePong, encodeReply, EnvelopeType, MAX_ID_LENGTH, RESERVED_EVENTS, RESERVED_TYPES, type RequestId
} from './envelope.js'
