// Reading the PSBTs of an Ark spend (an ark tx and its checkpoint txs): the leaf an input is
// spent through, the BIP341 sighash a wallet signs, the outputs. Parsing and the sighash are
// @scure/btc-signer's; this module adds the Ark shapes on top.
import { SigHash, Transaction, utils as btcUtils } from '@scure/btc-signer'
import { base64 } from '@scure/base'
import { bytesToHex, sameBytes } from './bytes.mjs'
import { LEAF_VERSION, branchHash, leafHash, multisigKeys } from './tapscript.mjs'

export class ArkTxError extends Error {}

// Ark txs are version 3 with a P2A anchor and sub-dust OP_RETURN outputs, and carry Ark's
// own `taptree` input field: none of that is a reason to refuse parsing. (Version 3 needs no
// `allowUnknownVersion`; in btc-signer 2.0.1 that option rejects every numeric version.)
export const TX_OPTIONS = {
  allowUnknownOutputs: true,
  allowUnknownInputs: true,
  disableScriptCheck: true,
  allowUnknown: true,
}

export function decodePsbt(b64) {
  try {
    return Transaction.fromPSBT(base64.decode(b64), TX_OPTIONS)
  } catch (err) {
    throw new ArkTxError(`cannot parse PSBT: ${err.message}`)
  }
}

export function inputs(tx) {
  return Array.from({ length: tx.inputsLength }, (_, i) => tx.getInput(i))
}

export function outputs(tx) {
  return Array.from({ length: tx.outputsLength }, (_, i) => tx.getOutput(i))
}

/** {controlBlock, script} of the one tap leaf input `index` is spent through. */
export function spendLeaf(tx, index) {
  const leaves = tx.getInput(index).tapLeafScript ?? []
  if (leaves.length !== 1) throw new ArkTxError(`input ${index} must carry exactly one tap leaf script`)
  const [controlBlock, versioned] = leaves[0]
  const version = versioned[versioned.length - 1]
  // The control block's first byte is the leaf version with the output key's parity in bit 0.
  if (version !== LEAF_VERSION || (controlBlock.version & 0xfe) !== LEAF_VERSION) {
    throw new ArkTxError(`input ${index} has an unsupported leaf version`)
  }
  return { controlBlock, script: versioned.slice(0, -1) }
}

/** The x-only keys the spending leaf of input `index` needs signatures from. */
export function signatureKeys(tx, index) {
  const keys = multisigKeys(spendLeaf(tx, index).script)
  if (keys === null) throw new ArkTxError(`input ${index} does not spend a multisig closure`)
  return keys
}

export function witnessUtxo(tx, index) {
  const utxo = tx.getInput(index).witnessUtxo
  if (utxo === undefined) throw new ArkTxError(`input ${index} has no witness utxo`)
  return utxo
}

/**
 * Whether input `index`'s control block proves its leaf is in the tree of the output it
 * spends. Without it a signature is still bound to the leaf, but the leaf would then be a
 * claim about an output, not a fact.
 *
 * Only the x coordinate is compared. The parity bit does not change what the wallet's
 * signature commits to (the sighash covers the leaf hash, not the control block); a wrong
 * one only makes the witness invalid, which harms no one's funds. The reference gateway
 * (embit's taproot_tweak drops the parity) currently always writes an even parity.
 */
export function leafCommitsToPrevout(tx, index) {
  const { controlBlock, script } = spendLeaf(tx, index)
  let node = leafHash(script)
  for (const sibling of controlBlock.merklePath) node = branchHash(node, sibling)
  const [outputKey] = btcUtils.taprootTweakPubkey(controlBlock.internalKey, node)
  const prevout = witnessUtxo(tx, index).script
  const isP2tr = prevout.length === 34 && prevout[0] === 0x51 && prevout[1] === 32
  return isP2tr && sameBytes(prevout.slice(2), outputKey)
}

/** BIP341 script-path sighash (SIGHASH_DEFAULT) of input `index` over its leaf, hex. */
export function tapscriptSighash(tx, index) {
  const { script } = spendLeaf(tx, index)
  const prevouts = inputs(tx).map((_, i) => witnessUtxo(tx, i))
  const digest = tx.preimageWitnessV1(
    index,
    prevouts.map((u) => u.script),
    SigHash.DEFAULT,
    prevouts.map((u) => u.amount),
    undefined,
    script,
    LEAF_VERSION,
  )
  return bytesToHex(digest)
}

export function txid(tx) {
  return tx.id
}

/** `<txid>:<vout>` of the output input `index` spends. */
export function prevOutpoint(tx, index) {
  const input = tx.getInput(index)
  return { txid: bytesToHex(input.txid), vout: input.index }
}
