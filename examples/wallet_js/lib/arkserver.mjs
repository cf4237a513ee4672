// The wallet's own view of its VTXOs, read from the Ark server rather than the gateway.
//
// A wallet should not have to take the gateway's word for what it owns: the Ark server's
// REST indexer (arkd's GET /v1/indexer/vtxos, at the URL get_info names as
// ark.server_url) lists the VTXOs of the wallet's default script, and compareWithGateway
// holds the gateway's sync_state against that list.
import { bytesToHex } from './bytes.mjs'
import { p2trScript, vtxoOutputKey } from './tapscript.mjs'

/** arkd's largest GetVtxos page (internal/core/application/indexer.go). */
const PAGE_SIZE = 100

/** The hex pkScript of `owner`'s default VTXO, given arkParams() of get_info.ark. */
export function defaultScript(owner, ark) {
  return bytesToHex(p2trScript(vtxoOutputKey(owner, ark.signer, ark.exitDelay)))
}

/**
 * The spendable VTXOs of `scripts` on the Ark server at `serverUrl`, every page, each as
 * { vtxo_id, amount, script, expires_at, spent, swept, preconfirmed } (amount a Number of
 * sats). Fails past `deadline` (ms since the epoch).
 */
export async function fetchVtxos(serverUrl, scripts, { deadline }) {
  if (!serverUrl) throw new Error('the gateway names no Ark server URL (get_info ark.server_url)')
  const found = []
  for (let index = 1; ; ) {
    const query = new URLSearchParams(scripts.map((s) => ['scripts', s]))
    query.append('spendableOnly', 'true')
    query.append('page.size', String(PAGE_SIZE))
    query.append('page.index', String(index))
    const left = Math.max(1, deadline - Date.now())
    let response
    try {
      response = await fetch(`${serverUrl}/v1/indexer/vtxos?${query}`, {
        signal: AbortSignal.timeout(left),
      })
    } catch (err) {
      throw new Error(`the Ark server at ${serverUrl} did not answer: ${err.message}`)
    }
    const body = await response.json().catch(() => null)
    if (!response.ok || body === null || !Array.isArray(body.vtxos)) {
      const why = body?.message ?? `HTTP ${response.status}`
      throw new Error(`the Ark server refused GetVtxos: ${why}`)
    }
    found.push(...body.vtxos.map(serverVtxo))
    const page = body.page
    if (!page || body.vtxos.length === 0 || page.current >= page.total) return found
    index = page.current + 1
  }
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
