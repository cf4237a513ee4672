// @arkade-os/sdk's own REST providers against the arkd simulator: whatever they refuse
// (a shape they do not accept, a stream they cannot read) is a simulator bug.
//
//   node read_rest.mjs <server url> <owner script hex>
//
// One JSON line per step on stdout. After "streaming" the caller makes a transaction for
// the owner script; the driver prints what the transaction stream and the script
// subscription deliver, then exits.
import { EventSource } from 'eventsource'
import { RestArkProvider, RestIndexerProvider } from '@arkade-os/sdk'

// Node has no EventSource of its own before v22; the SDK's streams need one.
globalThis.EventSource ??= EventSource

const [url, script] = process.argv.slice(2)
const emit = (obj) =>
  process.stdout.write(
    `${JSON.stringify(obj, (_, v) => (typeof v === 'bigint' ? v.toString() : v))}\n`,
  )

const ark = new RestArkProvider(url)
const indexer = new RestIndexerProvider(url)

emit({ event: 'info', info: await ark.getInfo() })

const { vtxos } = await indexer.getVtxos({ scripts: [script] })
emit({ event: 'vtxos', vtxos })
const spendable = await indexer.getVtxos({ scripts: [script], spendableOnly: true })
emit({ event: 'spendable', vtxos: spendable.vtxos, page: spendable.page ?? null })
const [first] = vtxos
emit({ event: 'commitment', tx: await indexer.getCommitmentTx(first.commitmentTxIds[0]) })
const chain = await indexer.getVtxoChain({ txid: first.txid, vout: first.vout })
emit({ event: 'chain', chain })
const offchain = chain.chain.filter((c) => c.type !== 'INDEXER_CHAINED_TX_TYPE_COMMITMENT')
emit({ event: 'virtual', txs: await indexer.getVirtualTxs(offchain.map((c) => c.txid)) })

try {
  await ark.submitTx('cHNidP8BAAoCAAAAAAAAAAAAAAA=', [])
  emit({ event: 'refused', error: null })
} catch (err) {
  emit({ event: 'refused', error: { type: err.constructor.name, name: err.name, code: err.code } })
}

const controller = new AbortController()
const subscriptionId = await indexer.subscribeForScripts([script])
emit({ event: 'subscribed', subscriptionId })

const firstOf = async (iterator, pick) => {
  for await (const item of iterator) {
    const found = pick(item)
    if (found) return found
  }
  return null
}
const fromTxs = firstOf(ark.getTransactionsStream(controller.signal), (n) => n.commitmentTx)
const fromSubscription = firstOf(
  indexer.getSubscription(subscriptionId, controller.signal),
  (e) => (e.newVtxos.length > 0 ? e : null),
)
emit({ event: 'streaming' })

const timer = setTimeout(() => {
  emit({ event: 'timeout' })
  process.exit(1)
}, 30_000)
const [tx, subscription] = await Promise.all([fromTxs, fromSubscription])
emit({ event: 'tx', commitmentTx: tx })
emit({ event: 'subscription', event_: subscription })
controller.abort()
clearTimeout(timer)
await indexer.unsubscribeForScripts(subscriptionId)
emit({ event: 'done' })
process.exit(0)
