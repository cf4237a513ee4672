// Runs the wallet's checks on cases the Python tests build with the reference
// implementation (tests/ceremony/test_wallet_js.py). Reads {"cases": [...]} on stdin and
// writes {"results": [...]}, one result per case, in order. An unknown op is a bug in the
// caller and ends the process non-zero.
import {
  Refusal,
  Session,
  arkParams,
  arktx,
  checkChallenge,
  checkPendingTx,
  signCheckpoints,
  signPayloadDigest,
  tapscript,
} from '../lib/index.mjs'
import { bytesToHex, hexToBytes } from '../lib/bytes.mjs'

const ops = {
  digest: ({ domain, payload }) => signPayloadDigest(domain, payload),
  vtxo_script: ({ owner, signer, delay }) =>
    bytesToHex(tapscript.p2trScript(tapscript.vtxoOutputKey(owner, signer, delay))),
  psbt: ({ psbt, index }) => {
    const tx = arktx.decodePsbt(psbt)
    return {
      sighash: arktx.tapscriptSighash(tx, index),
      txid: arktx.txid(tx),
      keys: arktx.signatureKeys(tx, index).map(bytesToHex),
      commits: arktx.leafCommitsToPrevout(tx, index),
    }
  },
  // One session: each challenge in turn, as the wallet meets them.
  session: ({ intent, wallet, challenges }) => {
    const session = new Session(intent)
    const view = { pubkey: wallet.pubkey, gateway: wallet.gateway, ark: arkParams(wallet.ark) }
    return challenges.map(({ event, content, now }) => {
      try {
        checkChallenge({ event, content, wallet: view, session, now })
        return 'signed'
      } catch (err) {
        if (err instanceof Refusal) return `refused: ${err.message}`
        throw err
      }
    })
  },
  // A pending tx handed to the wallet: the checkpoints it signs, or why it refuses. With
  // `intent`, inside that session after its `challenges` (all of which must pass).
  pending: ({ pending, wallet, secret, intent, challenges = [] }) => {
    const view = { pubkey: wallet.pubkey, gateway: wallet.gateway, ark: arkParams(wallet.ark) }
    const session = intent === undefined ? null : new Session(intent)
    for (const { event, content, now } of challenges) {
      checkChallenge({ event, content, wallet: view, session, now })
    }
    try {
      const checked = checkPendingTx(pending, view, session)
      return { signed: signCheckpoints(pending, checked, hexToBytes(secret)) }
    } catch (err) {
      if (err instanceof Refusal) return `refused: ${err.message}`
      throw err
    }
  },
}

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const { cases } = JSON.parse(Buffer.concat(chunks).toString('utf8'))
const results = cases.map((c) => {
  if (!(c.op in ops)) throw new Error(`unknown op ${JSON.stringify(c.op)}`)
  return ops[c.op](c)
})
process.stdout.write(JSON.stringify({ results }))
