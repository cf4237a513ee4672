// What a careful wallet checks in a signing challenge (31511) before it signs (PROTOCOL.md §3).
//
// A gateway that is buggy or lying can put any PSBT in front of the wallet and tell it any
// `payload_to_sign`. The wallet therefore recomputes the digest itself, makes sure the input
// is really its own, and holds the transaction's outputs to the intent it published. Any
// rule broken is a Refusal naming it; the wallet then does not answer at all.
import * as arktx from './arktx.mjs'
import { bytesToHex, isHex32, sameBytes } from './bytes.mjs'
import { payloadRef, signPayloadDigest } from './digest.mjs'
import * as proof from './proof.mjs'
import { isAnchor, p2trScript, vtxoOutput, vtxoOutputKey } from './tapscript.mjs'

export const KIND_CHALLENGE = 31511

/** Older names the gateway still accepts for the built-in types (PROTOCOL.md §2). */
export const ACTION_ALIASES = Object.freeze({
  p2p_transfer: 'ark:transfer',
  land_lightning: 'lightning:land',
  atomic_swap: 'ark:swap_leg',
})
const BUILTIN_TYPES = new Set(['ark:transfer', 'vtxo:split', 'lightning:land', 'ark:swap_leg'])
/** The types whose ark tx this wallet knows how to hold to the intent. */
const SPEND_TYPES = new Set(['ark:transfer', 'ark:swap_leg', 'lightning:land'])

export class Refusal extends Error {
  constructor(reason) {
    super(reason)
    this.name = 'Refusal'
  }
}

function require(condition, reason) {
  if (!condition) throw new Refusal(reason)
}

/** `sess_` + the first 24 hex chars of the intent's event id. */
export function sessionIdFor(intentEventId) {
  return `sess_${intentEventId.slice(0, 24)}`
}

export function challengeD(sessionId, stepIndex) {
  return `${sessionId}:${stepIndex}`
}

export function canonicalType(type) {
  return ACTION_ALIASES[type] ?? type
}

/**
 * A session the wallet opened by signing `intentEvent`: the intent it will hold challenges
 * to, and the ark-tx inputs it has approved so far (a checkpoint may only feed one of those).
 */
export class Session {
  constructor(intentEvent, content = JSON.parse(intentEvent.content)) {
    this.intentEvent = intentEvent
    this.intent = content
    this.id = sessionIdFor(intentEvent.id)
    this.type = canonicalType(content.type)
    /** {txid, vout, script, amount} of each checkpoint output an approved ark tx spends. */
    this.approvedInputs = []
    /** The txids of the ark txs this wallet signed in this session. */
    this.approvedArkTxids = new Set()
  }
}

/**
 * The wallet's view of the Ark server from `get_info`'s `ark`
 * ({signer_pubkey, unilateral_exit_delay, dust}).
 */
export function arkParams(ark) {
  require(
    ark && typeof ark.signer_pubkey === 'string' && Number.isInteger(ark.unilateral_exit_delay),
    'the gateway announced no usable Ark server parameters (get_info.ark)',
  )
  // arkd reports a compressed key; VTXO scripts use its x coordinate.
  const signer = ark.signer_pubkey.length === 66 ? ark.signer_pubkey.slice(2) : ark.signer_pubkey
  return { signer, exitDelay: ark.unilateral_exit_delay, dust: BigInt(ark.dust) }
}

function tagValues(event, name) {
  return event.tags.filter((t) => t[0] === name && t.length > 1).map((t) => t[1])
}

function checkEnvelope(event, content, wallet) {
  require(event.kind === KIND_CHALLENGE, `event ${event.id} is kind ${event.kind}, not 31511`)
  require(
    event.pubkey === wallet.gateway,
    `challenge ${event.id} comes from ${event.pubkey}, not the gateway`,
  )
  require(content && typeof content === 'object', `challenge ${event.id} is not a JSON object`)
}

/**
 * Check one challenge. `event` is the verified 31511, `content` its decrypted JSON,
 * `wallet` = {pubkey, gateway, ark: arkParams(...)}, `session` the Session it claims to
 * belong to. Returns the content when the wallet may sign `payload_to_sign`; throws Refusal.
 */
export function checkChallenge({ event, content, wallet, session, now = Date.now() / 1000 }) {
  checkEnvelope(event, content, wallet)
  const c = content
  const where = `challenge ${c.session_id} step ${c.step_index}`
  const fail = (condition, reason) => require(condition, `${where}: ${reason}`)
  fail(c.session_id === session.id, `not the session of intent ${session.intentEvent.id}`)
  fail(c.algo === 'BIP340', `algo ${c.algo}, only BIP340 is signed`)
  fail(isHex32(c.payload_to_sign), 'payload_to_sign is not 32 bytes of lowercase hex')
  fail(c.payload_ref === payloadRef(c.payload_to_sign), 'payload_ref is not sha256:<payload_to_sign>')
  fail(
    Number.isInteger(c.step_index) && Number.isInteger(c.step_total) && c.step_index >= 1,
    'step_index/step_total are not positive integers',
  )
  fail(c.step_index <= c.step_total, `step_index exceeds step_total ${c.step_total}`)
  fail(typeof c.domain === 'string', 'no domain')
  fail(Number.isInteger(c.expires_at) && c.expires_at > now, `expired at ${c.expires_at}`)
  fail(c.context && typeof c.context === 'object', 'no context')
  const d = tagValues(event, 'd')
  const expected = challengeD(session.id, c.step_index)
  fail(d.length === 1 && d[0] === expected, `d tag ${JSON.stringify(d)}, expected ${expected}`)
  fail(tagValues(event, 'e').includes(session.intentEvent.id), 'its e tag does not name our intent')
  if (c.type === 'sign_payload') checkSignPayload(c, session, fail)
  else if (c.type === 'sign_tx') checkSignTx(c, wallet, session, fail)
  else fail(false, `unknown challenge type ${JSON.stringify(c.type)}`)
  return content
}

function checkSignPayload(content, session, fail) {
  // The built-in actions move money; their consent is a transaction, never an opaque payload.
  fail(
    !BUILTIN_TYPES.has(session.type),
    `a ${session.type} is signed with sign_tx, not sign_payload`,
  )
  fail('payload' in content.context, 'sign_payload without context.payload')
  let digest
  try {
    digest = signPayloadDigest(content.domain, content.context.payload)
  } catch (err) {
    fail(false, `cannot recompute the digest: ${err.message}`)
  }
  fail(
    digest === content.payload_to_sign,
    `payload_to_sign ${content.payload_to_sign} is not the digest ${digest} ` +
      'of the domain and context.payload',
  )
}

function checkSignTx(content, wallet, session, fail) {
  fail(wallet.ark, 'without the Ark server parameters (get_info.ark) no output can be checked')
  const { psbt, input_index: index, tx_role: role } = content.context
  fail(typeof psbt === 'string', 'sign_tx without context.psbt')
  fail(
    role === 'ark_tx' || role === 'checkpoint' || role === 'intent_proof',
    `unknown tx_role ${JSON.stringify(role)}`,
  )
  if (role === 'intent_proof') return checkProof(content, wallet, session, fail)
  let tx
  let digest
  try {
    tx = arktx.decodePsbt(psbt)
    fail(Number.isInteger(index) && index >= 0 && index < tx.inputsLength, `no input ${index}`)
    const keys = arktx.signatureKeys(tx, index).map(bytesToHex)
    digest = arktx.tapscriptSighash(tx, index)
    // A leaf that does not need our key would make our signature worthless or, worse, a
    // signature over an input someone else is spending.
    fail(keys.includes(wallet.pubkey), `input ${index} is spent by keys ${keys}, not ours`)
    fail(
      arktx.leafCommitsToPrevout(tx, index),
      `the leaf of input ${index} is not in the output it spends`,
    )
  } catch (err) {
    if (err instanceof Refusal) throw err
    fail(false, `unusable PSBT: ${err.message}`)
  }
  fail(
    digest === content.payload_to_sign,
    `payload_to_sign ${content.payload_to_sign} is not the sighash ${digest} ` +
      `of input ${index} of the ${role} PSBT`,
  )
  if (role === 'ark_tx') approveArkTx(tx, wallet, session, fail)
  else checkCheckpoint(tx, session, fail)
}

/**
 * An ownership proof for GetPendingTx (the gateway recovering a SubmitTx answer it lost):
 * signed only if it can never spend. Input 0 spends the virtual toSpend tx of a
 * get-pending-tx message, every other input is a VTXO of this wallet (one the intent named,
 * if it named any), and it pays nothing but empty OP_RETURNs. Asked only after the wallet
 * signed the session's ark tx: there is nothing to recover otherwise.
 */
function checkProof(content, wallet, session, fail) {
  const { psbt, input_index: index } = content.context
  fail(
    session.approvedInputs.length > 0,
    'an ownership proof for a session whose ark tx this wallet never signed',
  )
  let tx
  let digest
  let message
  try {
    tx = arktx.decodePsbt(psbt)
    fail(Number.isInteger(index) && index >= 0 && index < tx.inputsLength, `no input ${index}`)
    const keys = arktx.signatureKeys(tx, index).map(bytesToHex)
    fail(keys.includes(wallet.pubkey), `proof input ${index} is spent by keys ${keys}, not ours`)
    fail(
      arktx.leafCommitsToPrevout(tx, index),
      `the leaf of proof input ${index} is not in the output it spends`,
    )
    message = proof.proofMessage(tx)
    digest = proof.proofSighash(tx, index)
  } catch (err) {
    if (err instanceof Refusal) throw err
    fail(false, `unusable proof PSBT: ${err.message}`)
  }
  fail(
    digest === content.payload_to_sign,
    `payload_to_sign ${content.payload_to_sign} is not the sighash ${digest} ` +
      `of input ${index} of the ownership proof`,
  )
  let parsed
  try {
    parsed = JSON.parse(message)
  } catch (err) {
    fail(false, `the proof message is not JSON: ${err.message}`)
  }
  fail(
    parsed !== null && typeof parsed === 'object' && parsed.type === 'get-pending-tx',
    `the proof message ${JSON.stringify(message)} is not a get-pending-tx request`,
  )
  const { signer, exitDelay } = wallet.ark
  const mine = p2trScript(vtxoOutputKey(wallet.pubkey, signer, exitDelay))
  const named = session.intent.params?.vtxo_ids
  for (let i = 1; i < tx.inputsLength; i++) {
    fail(
      sameBytes(arktx.witnessUtxo(tx, i).script, mine),
      `proof input ${i} is not a VTXO of this wallet`,
    )
    const { txid, vout } = arktx.prevOutpoint(tx, i)
    fail(
      !Array.isArray(named) || named.includes(`${txid}:${vout}`),
      `proof input ${i} (${txid}:${vout}) is not a VTXO the intent named`,
    )
  }
  for (const out of arktx.outputs(tx)) {
    fail(
      out.amount === 0n && out.script.length > 0 && out.script[0] === 0x6a,
      `the proof pays ${out.amount} sats to ${bytesToHex(out.script)}`,
    )
  }
}

function ownsInput(tx, index, pubkey) {
  try {
    return arktx.signatureKeys(tx, index).some((k) => bytesToHex(k) === pubkey)
  } catch (err) {
    if (err instanceof arktx.ArkTxError) return false
    throw err
  }
}

// An output pays `key` only in the form arkd gives an output of its size: P2TR at or above
// dust, `OP_RETURN <key>` below it. A big amount in the sub-dust form would be a VTXO its
// owner cannot spend on their own, so it does not count as paid.
function pays(output, key, dust) {
  const vtxo = vtxoOutput(output.script)
  return vtxo !== null && sameBytes(vtxo.key, key) && vtxo.subDust === output.amount < dust
}

function sum(values) {
  return values.reduce((a, b) => a + b, 0n)
}

function paidTo(outs, key, dust) {
  return sum(outs.filter((o) => pays(o, key, dust)).map((o) => o.amount))
}

function intentFee(params) {
  if (params.fee && typeof params.fee === 'object') return BigInt(params.fee.amount ?? 0)
  return BigInt(params.fee_amount ?? 0)
}

/** Hold the ark tx's outputs to the intent, then remember which checkpoints it spends. */
function approveArkTx(tx, wallet, session, fail) {
  const mine = holdToIntent(tx, wallet, session, fail)
  session.approvedArkTxids.add(arktx.txid(tx))
  for (const i of mine) {
    const { txid, vout } = arktx.prevOutpoint(tx, i)
    const utxo = arktx.witnessUtxo(tx, i)
    if (!session.approvedInputs.some((a) => a.txid === txid && a.vout === vout)) {
      const script = bytesToHex(utxo.script)
      session.approvedInputs.push({ txid, vout, script, amount: utxo.amount })
    }
  }
}

/**
 * The rules an ark tx must meet for `session`'s intent (README "What it checks"): what the
 * wallet loses is at most amount + fee, and the recipient (or, for a land, the gateway) is
 * paid in arkd's form. Returns the indexes of the wallet's own inputs; `fail(condition,
 * reason)` refuses. Also what a handed-over pending tx is held to (./finalize.mjs).
 */
export function holdToIntent(tx, wallet, session, fail) {
  const { signer, exitDelay, dust } = wallet.ark
  const params = session.intent.params ?? {}
  fail(
    SPEND_TYPES.has(session.type),
    `no output rules for a ${session.type}: the wallet cannot tell what it would approve`,
  )
  fail(Number.isSafeInteger(params.amount) && params.amount > 0, 'the intent has no amount')
  const amount = BigInt(params.amount)
  const fee = intentFee(params)
  const outs = arktx.outputs(tx)
  const mine = ownInputs(tx, wallet.pubkey)
  const spent = sum(mine.map((i) => arktx.witnessUtxo(tx, i).amount))
  const kept = paidTo(outs, vtxoOutputKey(wallet.pubkey, signer, exitDelay), dust)
  const outflow = spent - kept
  fail(
    outflow <= amount + fee,
    `the ark tx takes ${outflow} sats from the wallet (${spent} in, ${kept} back), ` +
      `the intent allows ${amount + fee} (amount ${amount} + fee ${fee})`,
  )
  if (session.type === 'lightning:land') {
    const toGateway = paidTo(outs, vtxoOutputKey(wallet.gateway, signer, exitDelay), dust)
    fail(
      toGateway >= amount,
      `the ark tx pays the gateway ${toGateway} sats, the invoice needs ${amount}`,
    )
  } else {
    const recipient = params.recipient_pubkey
    fail(isHex32(recipient), 'the intent has no recipient_pubkey')
    const key = vtxoOutputKey(recipient, signer, exitDelay)
    fail(
      outs.some((o) => o.amount === amount && pays(o, key, dust)),
      `no output pays ${amount} sats to the recipient ${recipient}`,
    )
  }
  return mine
}

/** The indexes of the inputs of `tx` whose spending leaf needs `pubkey`'s signature. */
export function ownInputs(tx, pubkey) {
  return arktx.inputs(tx).flatMap((_, i) => (ownsInput(tx, i, pubkey) ? [i] : []))
}

/** A checkpoint must be one an approved ark tx spends, and hand its whole value on. */
function checkCheckpoint(tx, session, fail) {
  const id = arktx.txid(tx)
  const fed = session.approvedInputs.filter((a) => a.txid === id)
  fail(fed.length > 0, `checkpoint ${id} is not an input of an ark tx this wallet approved`)
  checkpointFeeds(tx, fed, fail)
}

/**
 * `tx` (a checkpoint) hands its whole value on, through the outputs `fed` ({vout, script
 * (hex), amount}) that an ark tx spends, and has no other output but the anchor.
 */
export function checkpointFeeds(tx, fed, fail) {
  const id = arktx.txid(tx)
  const outs = arktx.outputs(tx)
  for (const a of fed) {
    const out = outs[a.vout]
    fail(
      out !== undefined && bytesToHex(out.script) === a.script && out.amount === a.amount,
      `checkpoint output ${id}:${a.vout} is not the one the approved ark tx spends`,
    )
  }
  const value = sum(arktx.inputs(tx).map((_, i) => arktx.witnessUtxo(tx, i).amount))
  const carried = outs.filter((o) => !isAnchor(o.script))
  fail(carried.length === 1, `checkpoint ${id} has ${carried.length} outputs besides the anchor`)
  fail(
    carried[0].amount === value,
    `checkpoint ${id} passes on ${carried[0].amount} of its ${value} sats`,
  )
}
