// The ArkRelay reference wallet as a library: the wire (wallet.mjs), the careful checks
// (checks.mjs) and the Bitcoin pieces they rest on (arktx.mjs, tapscript.mjs, digest.mjs).
export {
  ArkRelayWallet,
  Kind,
  PublishRefused,
  ServiceError,
  WalletTimeout,
  outcomeReport,
} from './wallet.mjs'
export { compareWithGateway, defaultScript, fetchVtxos } from './arkserver.mjs'
export { Backoff, Pacer, Verdict, judge, reasonPrefix } from './delivery.mjs'
export {
  ACTION_ALIASES,
  Refusal,
  Session,
  arkParams,
  canonicalType,
  challengeD,
  checkChallenge,
  sessionIdFor,
} from './checks.mjs'
export { canonicalJson, payloadRef, signPayloadDigest } from './digest.mjs'
export * as arktx from './arktx.mjs'
export * as tapscript from './tapscript.mjs'
