// Drives the wallet library through a gateway restart for tests/ceremony/test_wallet_resend.py.
// ARKRELAY_DRIVER holds {relay, gateway, secret, intents: [{type, params}], timeout_s}. The
// driver connects, loads get_info and prints {"event": "ready"}; each stdin line
// "start <from> <to>" runs intents[from..to) at once. stdout has one JSON object per line:
// the wallet's own reports (intent, retry, reconnected, outcome ...), then {"event": "done",
// index, kind} per intent and {"event": "finished"} once all ended.
import readline from 'node:readline'
import { ArkRelayWallet } from '../lib/index.mjs'

const emit = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`)
const config = JSON.parse(process.env.ARKRELAY_DRIVER)
const deadline = Date.now() + config.timeout_s * 1000
const wallet = await ArkRelayWallet.connect(
  { relayUrl: config.relay, gateway: config.gateway, secret: config.secret, onEvent: emit },
  { deadline },
)
await wallet.info({ deadline })
emit({ event: 'ready', pubkey: wallet.pubkey })

let ended = 0
let failed = false
async function run(index) {
  const { type, params } = config.intents[index]
  try {
    const { outcome, refusal } = await wallet.runIntent(type, params, { deadline })
    emit({ event: 'done', index, kind: outcome?.event.kind ?? null, refusal })
  } catch (err) {
    failed = true
    emit({ event: 'done', index, error: `${err.name}: ${err.message}` })
  }
  ended += 1
  if (ended === config.intents.length) {
    emit({ event: 'finished', reconnects: wallet.reconnects, retried: Object.fromEntries(wallet.retried) })
    wallet.close()
    process.exit(failed ? 1 : 0)
  }
}

for await (const line of readline.createInterface({ input: process.stdin })) {
  const [word, from, to] = line.trim().split(/\s+/)
  if (word !== 'start') throw new Error(`unknown command ${JSON.stringify(line)}`)
  for (let i = Number(from); i < Number(to); i++) run(i)
}
