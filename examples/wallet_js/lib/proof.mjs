// Ownership proofs (arkd's "intents", message type get-pending-tx): a gateway asks the
// wallet to sign one when it must recover a SubmitTx answer it lost (docs/protocol.md,
// "Recovering a lost SubmitTx answer"), and the wallet builds its own to ask the Ark server
// what is pending for its VTXOs (./finalize.mjs). A proof spends a virtual toSpend tx that
// commits to its message (input 0) and the VTXOs it proves, and pays one empty OP_RETURN:
// it can never move funds, provided the wallet checks that it really is such a proof
// before signing.
import { schnorr } from '@noble/curves/secp256k1.js'
import { SigHash, Transaction, utils as btcUtils } from '@scure/btc-signer'
import { base64 } from '@scure/base'
import { sha256 } from '@noble/hashes/sha2.js'
import { concatBytes, utf8ToBytes } from '@noble/hashes/utils.js'
import * as arktx from './arktx.mjs'
import { bytesToHex, hexToBytes, sameBytes } from './bytes.mjs'
import {
  LEAF_VERSION,
  NUMS_XONLY,
  compactSize,
  defaultVtxoLeaves,
  leafHash,
  merkleRoot,
  p2trScript,
} from './tapscript.mjs'

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

/** How long a proof the wallet builds stays valid: it only has to live for one call. */
export const PROOF_LIFETIME_S = 60
/** Ark's PSBT input field with the VTXO's whole tap tree (ark-lib's "taptree" key). */
const TAPTREE_KEY = { type: 0xde, key: utf8ToBytes('taptree') }

/** The exact message arkd verifies a get-pending-tx proof against: Go's encoding of
 *  {type, expire_at}, in that order, without spaces. Any other spelling fails its check. */
export function getPendingTxMessage(expireAt) {
  return JSON.stringify({ type: 'get-pending-tx', expire_at: expireAt })
}

// The taptree value: per leaf [depth][leaf version][compact size][script], depth as
// ark-lib writes it for a tree assembled the way tapscript.mjs merkleRoot assembles it.
function taptreeField(leaves) {
  return concatBytes(
    ...leaves.map((script, i) =>
      concatBytes(
        Uint8Array.of(Math.min(i + 1, leaves.length - 1), LEAF_VERSION),
        compactSize(script.length),
        script,
      ),
    ),
  )
}

/** The tapLeafScript entry that spends the collaborative leaf of `owner`'s default VTXO. */
function collaborativeLeaf(owner, signer, exitDelay) {
  const leaves = defaultVtxoLeaves(hexToBytes(owner), hexToBytes(signer), exitDelay)
  if (leaves.length !== 2) throw new arktx.ArkTxError('unexpected default VTXO tree')
  const [exit, collaborative] = leaves
  const [outputKey, parity] = btcUtils.taprootTweakPubkey(NUMS_XONLY, merkleRoot(leaves))
  const controlBlock = {
    version: LEAF_VERSION | parity,
    internalKey: NUMS_XONLY,
    merklePath: [leafHash(exit)],
  }
  return {
    script: p2trScript(outputKey),
    leaf: [controlBlock, concatBytes(collaborative, Uint8Array.of(LEAF_VERSION))],
    taptree: taptreeField(leaves),
  }
}

/**
 * The unsigned get-pending-tx proof that `owner` holds `vtxos` ({vtxo_id, amount, script}
 * of its default script, as ./arkserver.mjs lists them), valid until `expireAt` (seconds):
 * { tx (a btc-signer Transaction), message }. Built as ark-lib's New builds it: version 2,
 * input 0 spends toSpend, then every VTXO, all SIGHASH_ALL through the collaborative leaf;
 * one 0-sat empty OP_RETURN; the message in the global 0x09.
 */
export function buildProof(vtxos, { owner, ark, expireAt }) {
  if (vtxos.length === 0) throw new arktx.ArkTxError('a proof proves at least one VTXO')
  const message = getPendingTxMessage(expireAt)
  const spend = collaborativeLeaf(owner, ark.signer, ark.exitDelay)
  const first = spend.script
  const tx = new Transaction({ ...arktx.TX_OPTIONS, version: 2, lockTime: 0 })
  const common = {
    sighashType: SigHash.ALL,
    tapLeafScript: [spend.leaf],
    unknown: [[TAPTREE_KEY, spend.taptree]],
  }
  tx.addInput({
    txid: toSpendTxid(message, first),
    index: 0,
    witnessUtxo: { script: first, amount: 0n },
    ...common,
  })
  for (const vtxo of vtxos) {
    if (!sameBytes(hexToBytes(vtxo.script), first)) {
      throw new arktx.ArkTxError(`VTXO ${vtxo.vtxo_id} is not on this wallet's default script`)
    }
    const [txid, vout] = vtxo.vtxo_id.split(':')
    tx.addInput({
      txid,
      index: Number(vout),
      witnessUtxo: { script: first, amount: BigInt(vtxo.amount) },
      ...common,
    })
  }
  tx.addOutput({ script: Uint8Array.of(0x6a), amount: 0n })
  const messageKey = { type: GLOBAL_MESSAGE_TYPE, key: new Uint8Array(0) }
  tx.global.unknown = [[messageKey, utf8ToBytes(message)]]
  return { tx, message }
}

/** Sign every input of a proof built by buildProof with `secret`; the base64 PSBT. */
export function signProof(tx, secret) {
  const pubKey = schnorr.getPublicKey(secret)
  for (let i = 0; i < tx.inputsLength; i++) {
    const digest = hexToBytes(proofSighash(tx, i))
    const signature = concatBytes(schnorr.sign(digest, secret), Uint8Array.of(SigHash.ALL))
    const leaf = leafHash(arktx.spendLeaf(tx, i).script)
    tx.updateInput(i, { tapScriptSig: [[{ pubKey, leafHash: leaf }, signature]] }, true)
  }
  return base64.encode(tx.toPSBT())
}
