// The wallet's own line to the Ark server: arkd's REST interface, at the URL get_info names
// as ark.server_url (JSON as arkd's gateway writes it: lowerCamel names, 64-bit numbers as
// strings).
//
// A wallet should not have to take the gateway's word for what it owns: the REST indexer
// (GET /v1/indexer/vtxos) lists the VTXOs of the wallet's default script, and
// compareWithGateway holds the gateway's sync_state against that list. When the gateway
// cannot finish a spend it submitted, the wallet finishes it here itself: GetPendingTx
// (POST /v1/tx/pending) and FinalizeTx (POST /v1/tx/finalize); ./finalize.mjs decides what
// may be signed.
import { bytesToHex } from './bytes.mjs'
import { p2trScript, vtxoOutputKey } from './tapscript.mjs'

/** arkd's largest GetVtxos page (internal/core/application/indexer.go). */
const PAGE_SIZE = 100

/** The hex pkScript of `owner`'s default VTXO, given arkParams() of get_info.ark. */
export function defaultScript(owner, ark) {
  return bytesToHex(p2trScript(vtxoOutputKey(owner, ark.signer, ark.exitDelay)))
}

/** The Ark server refused a call, or answered with something that is not its answer. */
export class ArkServerError extends Error {
  constructor(rpc, why, { status, code } = {}) {
    super(`the Ark server refused ${rpc}: ${why}`)
    this.name = 'ArkServerError'
    this.rpc = rpc
    /** HTTP status and gRPC code of arkd's error body, when it sent one. */
    this.status = status
    this.code = code
  }
}

/** One REST call; the parsed JSON answer, or ArkServerError. Fails past `deadline`. */
async function call(serverUrl, rpc, path, { body, deadline, accept = (b) => b !== null }) {
  if (!serverUrl) throw new Error('the gateway names no Ark server URL (get_info ark.server_url)')
  const init = { signal: AbortSignal.timeout(Math.max(1, deadline - Date.now())) }
  if (body !== undefined) {
    init.method = 'POST'
    init.headers = { 'content-type': 'application/json' }
    init.body = JSON.stringify(body)
  }
  let response
  try {
    response = await fetch(`${serverUrl}${path}`, init)
  } catch (err) {
    throw new Error(`the Ark server at ${serverUrl} did not answer ${rpc}: ${err.message}`)
  }
  const answer = await response.json().catch(() => null)
  if (!response.ok) {
    const why = answer?.message ?? `HTTP ${response.status}`
    throw new ArkServerError(rpc, why, { status: response.status, code: answer?.code })
  }
  if (answer === null || typeof answer !== 'object' || !accept(answer)) {
    throw new ArkServerError(rpc, `an answer that is not a ${rpc} response`)
  }
  return answer
}

/**
 * The VTXOs of `scripts` on the Ark server at `serverUrl`, every page, each as
 * { vtxo_id, amount, script, expires_at, spent, swept, preconfirmed } (amount a Number of
 * sats): the spendable ones, or with `pendingOnly` those an ark tx holds spent until it is
 * finalized. Fails past `deadline` (ms since the epoch).
 */
export async function fetchVtxos(serverUrl, scripts, { deadline, pendingOnly = false }) {
  const found = []
  for (let index = 1; ; ) {
    const query = new URLSearchParams(scripts.map((s) => ['scripts', s]))
    query.append(pendingOnly ? 'pendingOnly' : 'spendableOnly', 'true')
    query.append('page.size', String(PAGE_SIZE))
    query.append('page.index', String(index))
    const body = await call(serverUrl, 'GetVtxos', `/v1/indexer/vtxos?${query}`, {
      deadline,
      accept: (b) => Array.isArray(b.vtxos),
    })
    found.push(...body.vtxos.map(serverVtxo))
    const page = body.page
    if (!page || body.vtxos.length === 0 || page.current >= page.total) return found
    index = page.current + 1
  }
}

/**
 * GetPendingTx: the ark txs the Ark server holds submitted but not finalized that spend
 * the VTXOs an ownership proof (./proof.mjs) proves, each as { ark_txid, final_ark_tx,
 * checkpoint_txs } (the shape of a 31341's pending_tx).
 */
export async function getPendingTxs(serverUrl, proof, message, { deadline }) {
  const body = await call(serverUrl, 'GetPendingTx', '/v1/tx/pending', {
    body: { intent: { proof, message } },
    deadline,
    accept: (b) => Array.isArray(b.pendingTxs),
  })
  return body.pendingTxs.map((p) => ({
    ark_txid: p.arkTxid,
    final_ark_tx: p.finalArkTx,
    checkpoint_txs: p.signedCheckpointTxs,
  }))
}

/** FinalizeTx: complete `arkTxid` with every checkpoint tx, signed by its owner. */
export async function finalizeTx(serverUrl, arkTxid, finalCheckpointTxs, { deadline }) {
  await call(serverUrl, 'FinalizeTx', '/v1/tx/finalize', {
    body: { arkTxid, finalCheckpointTxs },
    deadline,
  })
}

function serverVtxo(v) {
  return {
    vtxo_id: `${v.outpoint.txid}:${v.outpoint.vout}`,
    amount: Number(v.amount),
    script: v.script,
    expires_at: Number(v.expiresAt ?? 0),
    spent: v.isSpent,
    swept: v.isSwept,
    preconfirmed: v.isPreconfirmed,
  }
}

/**
 * Where the gateway's sync_state and the Ark server's spendable VTXOs disagree (empty when
 * they agree): the same VTXOs, each of the same amount in sats.
 */
export function compareWithGateway(server, syncState) {
  const theirs = new Map(server.filter((v) => !v.spent && !v.swept).map((v) => [v.vtxo_id, v]))
  const ours = new Map(
    (syncState.vtxos ?? []).filter((e) => e.status === 'spendable').map((e) => [e.vtxo_id, e]),
  )
  const problems = []
  for (const [id, entry] of ours) {
    const seen = theirs.get(id)
    if (seen === undefined) problems.push(`${id}: the gateway lists it, the Ark server does not`)
    else if (seen.amount !== entry.amount) {
      problems.push(`${id}: ${entry.amount} sats at the gateway, ${seen.amount} at the Ark server`)
    }
  }
  for (const id of theirs.keys()) {
    if (!ours.has(id)) problems.push(`${id}: the Ark server lists it, the gateway does not`)
  }
  return problems.sort()
}
