// Ownership proofs (arkd's "intents", message type get-pending-tx) a gateway asks the wallet
// to sign when it must recover a SubmitTx answer it lost (docs/protocol.md, "Recovering a
// lost SubmitTx answer"). A proof spends a virtual toSpend tx that commits to its message
// (input 0) and the VTXOs it proves, and pays one empty OP_RETURN: it can never move funds,
// provided the wallet checks that it really is such a proof before signing.
import { SigHash } from '@scure/btc-signer'
import { sha256 } from '@noble/hashes/sha2.js'
import { concatBytes, utf8ToBytes } from '@noble/hashes/utils.js'
import * as arktx from './arktx.mjs'
import { bytesToHex, sameBytes } from './bytes.mjs'
import { compactSize, LEAF_VERSION } from './tapscript.mjs'

const MESSAGE_TAG = utf8ToBytes('ark-intent-proof-message')
/** BIP-322's PSBT_GLOBAL_GENERIC_SIGNED_MESSAGE, where the proof keeps its message. */
const GLOBAL_MESSAGE_TYPE = 9

/** The message the proof commits to, from its PSBT global 0x09. */
export function proofMessage(tx) {
  const found = (tx.global.unknown ?? []).find(([k]) => k.type === GLOBAL_MESSAGE_TYPE)
  if (found === undefined) throw new arktx.ArkTxError('the proof carries no message')
  return new TextDecoder('utf-8', { fatal: true }).decode(found[1])
}

function messageHash(message) {
  const tag = sha256(MESSAGE_TAG)
  return sha256(concatBytes(tag, tag, utf8ToBytes(message)))
}

function le32(n) {
  const out = new Uint8Array(4)
  new DataView(out.buffer).setUint32(0, n, true)
  return out
}

/** The txid (display order, hex) of toSpend: version 0, one input (zero hash, 0xffffffff)
 *  with scriptSig `OP_0 <message hash>` and sequence 0, one 0-sat output to `script`. */
export function toSpendTxid(message, script) {
  const scriptSig = concatBytes(Uint8Array.of(0x00, 0x20), messageHash(message))
  const raw = concatBytes(
    le32(0),
    compactSize(1),
    new Uint8Array(32),
    le32(0xffffffff),
    compactSize(scriptSig.length),
    scriptSig,
    le32(0),
    compactSize(1),
    new Uint8Array(8),
    compactSize(script.length),
    script,
    le32(0),
  )
  return bytesToHex(sha256(sha256(raw)).reverse())
}

/** The SIGHASH_ALL script-path sighash of proof input `index` (hex), after checking that
 *  input 0 spends the toSpend tx of the proof's own message. */
export function proofSighash(tx, index) {
  const message = proofMessage(tx)
  if (tx.inputsLength < 2) throw new arktx.ArkTxError('the proof proves no VTXO')
  const first = arktx.witnessUtxo(tx, 1).script
  const input0 = arktx.prevOutpoint(tx, 0)
  if (input0.txid !== toSpendTxid(message, first) || input0.vout !== 0) {
    throw new arktx.ArkTxError('proof input 0 does not spend the toSpend tx of its message')
  }
  const utxo0 = arktx.witnessUtxo(tx, 0)
  if (!sameBytes(utxo0.script, first) || utxo0.amount !== 0n) {
    throw new arktx.ArkTxError('proof input 0 misstates the toSpend output')
  }
  const { script } = arktx.spendLeaf(tx, index)
  const prevouts = arktx.inputs(tx).map((_, i) => arktx.witnessUtxo(tx, i))
  return bytesToHex(
    tx.preimageWitnessV1(
      index,
      prevouts.map((u) => u.script),
      SigHash.ALL,
      prevouts.map((u) => u.amount),
      undefined,
      script,
      LEAF_VERSION,
    ),
  )
}
