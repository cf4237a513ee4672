// Finishing a spend the gateway submitted to the Ark server but could not finalize.
//
// After SubmitTx the Ark server holds the wallet's VTXOs spent by an ark tx that only
// FinalizeTx, with the owners' checkpoint signatures, completes. When the gateway cannot
// finish it (its deadline, the operator's cancel) it hands the tx over in a 31341's
// `pending_tx` (docs/protocol.md); when the wallet holds no such answer, GetPendingTx gives
// the same thing back for an ownership proof of the wallet's VTXOs. Either way the wallet
// signs its checkpoints and calls FinalizeTx itself, over arkd's REST interface.
//
// A checkpoint signature is what moves the money, so the wallet signs only a tx it already
// consented to: its own valid signature is on every input of the ark tx that spends its
// VTXOs, the ark tx spends nothing else (but the other legs of a swap it signed), and
// within a session the ark tx is the one it approved there and still meets the intent.
import { schnorr } from '@noble/curves/secp256k1.js'
import { base64 } from '@scure/base'
import * as arktx from './arktx.mjs'
import { bytesToHex, hexToBytes, isHex32, sameBytes } from './bytes.mjs'
import { defaultScript, fetchVtxos, finalizeTx, getPendingTxs } from './arkserver.mjs'
import { Refusal, checkpointFeeds, holdToIntent, ownInputs } from './checks.mjs'
import { PROOF_LIFETIME_S, buildProof, signProof } from './proof.mjs'
import { leafHash } from './tapscript.mjs'

function require(condition, reason) {
  if (!condition) throw new Refusal(reason)
}

function parse(b64, what) {
  try {
    return arktx.decodePsbt(b64)
  } catch (err) {
    throw new Refusal(`${what}: ${err.message}`)
  }
}

/** This wallet's valid BIP340 signature on ark-tx input `index`, over its own leaf. */
function carriesOwnSignature(tx, index, pubkey) {
  const { script } = arktx.spendLeaf(tx, index)
  const leaf = leafHash(script)
  const digest = hexToBytes(arktx.tapscriptSighash(tx, index))
  const key = hexToBytes(pubkey)
  return (tx.getInput(index).tapScriptSig ?? []).some(
    ([{ pubKey, leafHash: signedLeaf }, signature]) =>
      sameBytes(pubKey, key) &&
      sameBytes(signedLeaf, leaf) &&
      signature.length === 64 &&
      schnorr.verify(signature, digest, key),
  )
}

/**
 * Check a pending tx ({ark_txid, final_ark_tx, checkpoint_txs}: a 31341's `pending_tx`, or
 * one GetPendingTx returned) before anything of it is signed. `wallet` = {pubkey, ark:
 * arkParams(...)}; `session` the Session whose intent it must meet, or null when the wallet
 * holds no session for it (then its own signatures on the ark tx are the evidence it
 * consented). Returns {arkTxid, toSign: indexes into checkpoint_txs}; throws Refusal.
 */
export function checkPendingTx(pending, wallet, session = null) {
  require(pending && typeof pending === 'object', 'the pending tx is not an object')
  const { ark_txid: arkTxid, final_ark_tx: finalArkTx, checkpoint_txs: checkpoints } = pending
  require(isHex32(arkTxid), 'the pending tx names no ark txid')
  const where = `pending ark tx ${arkTxid}`
  const fail = (condition, reason) => require(condition, `${where}: ${reason}`)
  fail(typeof finalArkTx === 'string', 'no final_ark_tx')
  fail(
    Array.isArray(checkpoints) &&
      checkpoints.length > 0 &&
      checkpoints.every((c) => typeof c === 'string'),
    'no checkpoint txs',
  )
  const ark = parse(finalArkTx, `${where}: unusable final ark tx`)
  fail(arktx.txid(ark) === arkTxid, `the final ark tx is ${arktx.txid(ark)}, not the tx named`)
  let mine
  try {
    mine = ownInputs(ark, wallet.pubkey)
    fail(mine.length > 0, 'it spends no VTXO of this wallet')
    // Only a swap leg's ark tx spends other owners' VTXOs, and only its session knows that.
    const shared = session !== null && session.type === 'ark:swap_leg'
    for (let i = 0; i < ark.inputsLength && !shared; i++) {
      fail(mine.includes(i), `input ${i} spends a VTXO that is not this wallet's`)
    }
    if (session !== null) {
      holdToIntent(ark, wallet, session, fail)
      fail(
        session.approvedArkTxids.has(arkTxid),
        `not the ark tx this wallet signed in session ${session.id}`,
      )
    }
    for (const i of mine) {
      fail(
        carriesOwnSignature(ark, i, wallet.pubkey),
        `input ${i} does not carry this wallet's signature`,
      )
    }
  } catch (err) {
    if (err instanceof Refusal) throw err
    fail(false, `unusable final ark tx: ${err.message}`)
  }

  const byTxid = new Map()
  checkpoints.forEach((b64, index) => {
    const tx = parse(b64, `${where}: unusable checkpoint ${index}`)
    byTxid.set(arktx.txid(tx), { index, tx })
  })
  const spentByArk = new Set(arktx.inputs(ark).map((_, i) => arktx.prevOutpoint(ark, i).txid))
  for (const id of byTxid.keys()) {
    fail(spentByArk.has(id), `checkpoint ${id} is not spent by the ark tx`)
  }
  const own = defaultScript(wallet.pubkey, wallet.ark)
  const toSign = []
  for (const i of mine) {
    const { txid, vout } = arktx.prevOutpoint(ark, i)
    const found = byTxid.get(txid)
    fail(found !== undefined, `no checkpoint tx for ark tx input ${i} (${txid})`)
    const { tx, index } = found
    const utxo = arktx.witnessUtxo(ark, i)
    checkpointFeeds(tx, [{ vout, script: bytesToHex(utxo.script), amount: utxo.amount }], fail)
    try {
      fail(tx.inputsLength === 1, `checkpoint ${txid} has ${tx.inputsLength} inputs`)
      const keys = arktx.signatureKeys(tx, 0).map(bytesToHex)
      fail(keys.includes(wallet.pubkey), `checkpoint ${txid} is spent by keys ${keys}, not ours`)
      fail(
        arktx.leafCommitsToPrevout(tx, 0),
        `the leaf of checkpoint ${txid} is not in the output it spends`,
      )
      fail(
        bytesToHex(arktx.witnessUtxo(tx, 0).script) === own,
        `checkpoint ${txid} spends an output that is not this wallet's VTXO`,
      )
    } catch (err) {
      if (err instanceof Refusal) throw err
      fail(false, `unusable checkpoint ${txid}: ${err.message}`)
    }
    if (!toSign.includes(index)) toSign.push(index)
  }
  return { arkTxid, toSign }
}

/** `pending.checkpoint_txs` with this wallet's signature on each one `checked` names (any
 *  signature of this wallet's key already there is replaced); base64 PSBTs, same order. */
export function signCheckpoints(pending, checked, secret) {
  const pubKey = schnorr.getPublicKey(secret)
  return pending.checkpoint_txs.map((b64, index) => {
    if (!checked.toSign.includes(index)) return b64
    const tx = arktx.decodePsbt(b64)
    const leaf = leafHash(arktx.spendLeaf(tx, 0).script)
    const signature = schnorr.sign(hexToBytes(arktx.tapscriptSighash(tx, 0)), secret)
    const sigs = tx.getInput(0).tapScriptSig ?? []
    const others = sigs.filter(([k]) => !sameBytes(k.pubKey, pubKey))
    // btc-signer merges signatures by key and refuses a second one for the same key:
    // clear the field, then put back the others' and this wallet's.
    tx.updateInput(0, { tapScriptSig: undefined }, true)
    tx.updateInput(0, { tapScriptSig: [...others, [{ pubKey, leafHash: leaf }, signature]] }, true)
    return base64.encode(tx.toPSBT())
  })
}

/**
 * Check, sign and finalize one pending tx at the Ark server (`serverUrl`, arkd's REST).
 * Returns {ark_txid, signed: how many checkpoints this wallet signed}; Refusal before
 * anything is signed or sent.
 */
export async function finalizePendingTx(
  serverUrl,
  pending,
  { wallet, secret, session = null, deadline },
) {
  const checked = checkPendingTx(pending, wallet, session)
  const finals = signCheckpoints(pending, checked, secret)
  await finalizeTx(serverUrl, checked.arkTxid, finals, { deadline })
  return { ark_txid: checked.arkTxid, signed: checked.toSign.length }
}

/**
 * The recovery path, with no session and no handed-over tx: list this wallet's VTXOs the
 * Ark server holds pending, prove ownership of them to GetPendingTx, and finalize each tx
 * it returns that passes checkPendingTx. Returns {pending_vtxos, finalized: [...], refused:
 * [{ark_txid, reason}]}.
 */
export async function recoverPending(
  serverUrl,
  { wallet, secret, deadline, now = Date.now() / 1000 },
) {
  const script = defaultScript(wallet.pubkey, wallet.ark)
  const vtxos = await fetchVtxos(serverUrl, [script], { deadline, pendingOnly: true })
  const report = { pending_vtxos: vtxos.map((v) => v.vtxo_id), finalized: [], refused: [] }
  if (vtxos.length === 0) return report
  // The wallet built this proof itself: it proves its own VTXOs and pays nothing.
  const expireAt = Math.floor(now) + PROOF_LIFETIME_S
  const { tx, message } = buildProof(vtxos, { owner: wallet.pubkey, ark: wallet.ark, expireAt })
  const proof = signProof(tx, secret)
  for (const pending of await getPendingTxs(serverUrl, proof, message, { deadline })) {
    try {
      const done = await finalizePendingTx(serverUrl, pending, { wallet, secret, deadline })
      report.finalized.push(done)
    } catch (err) {
      if (!(err instanceof Refusal)) throw err
      report.refused.push({ ark_txid: pending.ark_txid, reason: err.message })
    }
  }
  return report
}
