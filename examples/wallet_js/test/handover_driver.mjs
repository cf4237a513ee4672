// A wallet that signs the ark tx of its transfer and then goes quiet: it never answers a
// checkpoint challenge, so the gateway, holding a submitted tx it cannot finish, hands it
// over at the session's deadline in a 31341 with pending_tx; the library then finalizes it
// at the Ark server (tests/ceremony/test_wallet_js_finalize.py). Everything else is the
// library as a user gets it.
//
// usage: node handover_driver.mjs <relay url> <gateway hex> <recipient hex> <amount> <fee>
// The secret comes from ARKRELAY_WALLET_SECRET. One JSON object per line on stdout; exit
// 0 when the handed-over tx was finalized, 3 when the wallet refused it, 1 otherwise.
import { ArkRelayWallet } from '../lib/index.mjs'

class SilentAfterSubmit extends ArkRelayWallet {
  async answer(message, session, deadline) {
    if (message.content.context?.tx_role === 'checkpoint') {
      this.onEvent({ event: 'withheld', step: message.content.step_index })
      return null
    }
    return super.answer(message, session, deadline)
  }
}

const [relayUrl, gateway, recipient, amount, fee] = process.argv.slice(2)
const emit = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`)
const deadline = Date.now() + 60_000
const wallet = await SilentAfterSubmit.connect(
  { relayUrl, gateway, secret: process.env.ARKRELAY_WALLET_SECRET, onEvent: emit },
  { deadline },
)
let status = 1
try {
  await wallet.info({ deadline })
  const params = {
    asset_id: 'gBTC',
    amount: Number(amount),
    recipient_pubkey: recipient,
    fee: { asset_id: 'gBTC', amount: Number(fee) },
  }
  const { refusal, finalized } = await wallet.runIntent('ark:transfer', params, { deadline })
  status = finalized !== null ? 0 : refusal !== null ? 3 : 1
} finally {
  wallet.close()
}
process.exit(status)
