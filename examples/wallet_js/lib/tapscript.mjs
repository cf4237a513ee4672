// Ark VTXO scripts as arkd builds them (ark-lib's closures and btcd's tree assembly): enough
// for a wallet to derive the output script that pays a key, and to read the keys a leaf
// needs signatures from. Keys are 32-byte x-only.
import { schnorr } from '@noble/curves/secp256k1.js'
import { utils as btcUtils } from '@scure/btc-signer'
import { concatBytes } from '@noble/hashes/utils.js'
import { compareBytes, hexToBytes, sameBytes } from './bytes.mjs'

export const LEAF_VERSION = 0xc0
/** BIP341's provably unspendable internal key, which arkd uses for every VTXO tree. */
export const NUMS_XONLY = hexToBytes('50929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0')
/** Pay-to-anchor: the last output of every ark and checkpoint tx; worth nothing to anyone. */
export const ANCHOR_SCRIPT = hexToBytes('51024e73')

const OP_0 = 0x00
const OP_1 = 0x51
const OP_1NEGATE = 0x4f
const OP_RETURN = 0x6a
const OP_DROP = 0x75
const OP_CHECKSIG = 0xac
const OP_CHECKSIGVERIFY = 0xad
const OP_CHECKSEQUENCEVERIFY = 0xb2
const OP_PUSHDATA1 = 0x4c
const SEQUENCE_TYPE_SECONDS = 1 << 22
const SECONDS_GRANULARITY = 9
const SECONDS_MIN = 512

function xonly(key) {
  const bytes = typeof key === 'string' ? hexToBytes(key) : key
  if (bytes.length !== 32) throw new Error(`expected a 32-byte x-only key, got ${bytes.length} bytes`)
  return bytes
}

export function compactSize(n) {
  if (n < 0xfd) return Uint8Array.of(n)
  if (n <= 0xffff) return Uint8Array.of(0xfd, n & 0xff, n >> 8)
  throw new Error('script too large for a tap leaf')
}

/** The relative-timelock argument for a delay: seconds from 512 up (in units of 512), else blocks. */
export function bip68Sequence(delay) {
  if (!Number.isInteger(delay) || delay < 0) throw new Error(`bad delay ${delay}`)
  if (delay < SECONDS_MIN) return delay
  if (delay % SECONDS_MIN) throw new Error(`a delay in seconds must be a multiple of 512, got ${delay}`)
  return SEQUENCE_TYPE_SECONDS | (delay >> SECONDS_GRANULARITY)
}

function pushData(data) {
  if (data.length < OP_PUSHDATA1) return concatBytes(Uint8Array.of(data.length), data)
  if (data.length <= 0xff) return concatBytes(Uint8Array.of(OP_PUSHDATA1, data.length), data)
  throw new Error('push too large for a closure')
}

// Minimal script-number push, the way btcd's ScriptBuilder.AddInt64 writes it.
function pushInt(n) {
  if (n === 0) return Uint8Array.of(OP_0)
  if (n === -1) return Uint8Array.of(OP_1NEGATE)
  if (n >= 1 && n <= 16) return Uint8Array.of(OP_1 + n - 1)
  const negative = n < 0
  let value = Math.abs(n)
  const out = []
  while (value > 0) {
    out.push(value & 0xff)
    value = Math.floor(value / 256)
  }
  if (out[out.length - 1] & 0x80) out.push(negative ? 0x80 : 0x00)
  else if (negative) out[out.length - 1] |= 0x80
  return pushData(Uint8Array.from(out))
}

/** `<k1> OP_CHECKSIGVERIFY ... <kn> OP_CHECKSIG`: every key must sign. */
export function multisigClosure(keys) {
  if (keys.length === 0) throw new Error('a multisig closure needs at least one key')
  const last = keys.length - 1
  return concatBytes(
    ...keys.map((key, i) =>
      concatBytes(pushData(xonly(key)), Uint8Array.of(i === last ? OP_CHECKSIG : OP_CHECKSIGVERIFY)),
    ),
  )
}

/** `<sequence> OP_CSV OP_DROP` then a multisig closure: the owner's way out after a delay. */
export function csvClosure(delay, keys) {
  return concatBytes(
    pushInt(bip68Sequence(delay)),
    Uint8Array.of(OP_CHECKSEQUENCEVERIFY, OP_DROP),
    multisigClosure(keys),
  )
}

/** The keys of a CHECKSIGVERIFY-chain multisig closure, or null if the script is not one. */
export function multisigKeys(script) {
  const keys = []
  let pos = 0
  while (pos < script.length) {
    if (script[pos] !== 32 || pos + 34 > script.length) return null
    keys.push(script.slice(pos + 1, pos + 33))
    const op = script[pos + 33]
    pos += 34
    if (op === OP_CHECKSIG) return pos === script.length ? keys : null
    if (op !== OP_CHECKSIGVERIFY) return null
  }
  return null
}

export function leafHash(script, version = LEAF_VERSION) {
  return schnorr.utils.taggedHash('TapLeaf', Uint8Array.of(version), compactSize(script.length), script)
}

export function branchHash(a, b) {
  const [lo, hi] = compareBytes(a, b) < 0 ? [a, b] : [b, a]
  return schnorr.utils.taggedHash('TapBranch', lo, hi)
}

// btcd's AssembleTaprootScriptTree: leaves paired in order, a lone last leaf merged into
// the last pair, then branches merged front to back. Other assemblies give other roots.
export function merkleRoot(leaves) {
  if (leaves.length === 0) throw new Error('a tap tree needs at least one leaf')
  const hashes = leaves.map((s) => leafHash(s))
  if (hashes.length === 1) return hashes[0]
  let branches = []
  for (let i = 0; i < hashes.length; i += 2) {
    if (i === hashes.length - 1) branches.push(branchHash(branches.pop(), hashes[i]))
    else branches.push(branchHash(hashes[i], hashes[i + 1]))
  }
  while (branches.length > 1) branches = [...branches.slice(2), branchHash(branches[0], branches[1])]
  return branches[0]
}

/** The x-only output key of a tree over `leaves` with the NUMS internal key. */
export function treeOutputKey(leaves) {
  const [key] = btcUtils.taprootTweakPubkey(NUMS_XONLY, merkleRoot(leaves))
  return key
}

/** ark-lib's default VTXO tree: [exit (owner, after the delay), collaborative (owner + signer)]. */
export function defaultVtxoLeaves(owner, signer, exitDelay) {
  return [csvClosure(exitDelay, [owner]), multisigClosure([owner, signer])]
}

/** The output key of the default VTXO script of `owner`; what an output paying them commits to. */
export function vtxoOutputKey(owner, signer, exitDelay) {
  return treeOutputKey(defaultVtxoLeaves(xonly(owner), xonly(signer), exitDelay))
}

export function p2trScript(outputKey) {
  return concatBytes(Uint8Array.of(OP_1, 32), outputKey)
}

/**
 * The output key an ark-tx output turns into a VTXO for, and in which form, else null.
 *
 * Like arkd's projection of a finalized ark tx, only 34-byte scripts count: `OP_1 <key>`
 * (P2TR) and the sub-dust form `OP_RETURN <key>` arkd uses for outputs below dust.
 */
export function vtxoOutput(script) {
  if (script.length !== 34 || script[1] !== 32) return null
  if (script[0] === OP_1) return { key: script.slice(2), subDust: false }
  if (script[0] === OP_RETURN) return { key: script.slice(2), subDust: true }
  return null
}

export function isAnchor(script) {
  return sameBytes(script, ANCHOR_SCRIPT)
}
