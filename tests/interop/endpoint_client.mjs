// A wallet written with nostr-tools, talking to the gateway's relay endpoint.
// Usage: node endpoint_client.mjs <ws url> <wallet secret hex> <gateway pubkey hex>
// It prints JSON lines on stdout: {"ready": "gateway"} when its subscription for the
// gateway's answers is live (the Python side then publishes one), and last {"done": {...}}
// with what it saw. Any failure exits non-zero with the reason on stderr.
import WebSocket from 'ws'
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay'
import { finalizeEvent, getPublicKey } from 'nostr-tools/pure'
import { hexToBytes } from 'nostr-tools/utils'

useWebSocketImplementation(WebSocket)

const STEP_TIMEOUT_MS = 10_000
const QUIET_MS = 300
const [url, secretHex, gatewayPubkey] = process.argv.slice(2)
const secret = hexToBytes(secretHex)
const pubkey = getPublicKey(secret)
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const now = () => Math.floor(Date.now() / 1000)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function within(promise, what) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), STEP_TIMEOUT_MS)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

function note(content, created_at = now()) {
  return finalizeEvent({ kind: 1, created_at, tags: [['t', 'interop']], content }, secret)
}

// Resolves on the first event matching `test` that `sink` collects.
function waiter() {
  const seen = []
  let wake = () => {}
  return {
    seen,
    push(event) {
      seen.push(event)
      wake()
    },
    async until(test, what) {
      while (!seen.some(test)) {
        await within(new Promise((resolve) => (wake = resolve)), what)
      }
      return seen.find(test)
    },
  }
}

const result = {}
const relay = await within(Relay.connect(url), 'connect')
const other = await within(Relay.connect(url), 'second connect')
const raw = []
relay.ws.addEventListener('message', (message) => raw.push(String(message.data)))

// Publish, duplicate, bad signature.
const stored = note('stored before the REQ', now() - 10)
result.published = { id: stored.id, reason: await within(relay.publish(stored), 'OK') }
result.duplicate = await within(relay.publish(stored), 'duplicate OK')
const forged = { ...note('forged'), sig: '00'.repeat(64) }
try {
  await within(relay.publish(forged), 'invalid OK')
  result.forged = 'accepted'
} catch (err) {
  result.forged = err.message
}

// REQ: stored events, EOSE, then live delivery.
const mine = waiter()
let eosed = false
const firstEvents = []
let eose
const eoseSeen = new Promise((resolve) => (eose = resolve))
const sub = relay.subscribe([{ kinds: [1], authors: [pubkey] }], {
  onevent(event) {
    if (eosed) mine.push(event)
    else firstEvents.push(event.id)
  },
  oneose() {
    eosed = true
    eose()
  },
})
await within(eoseSeen, 'EOSE')
result.stored = firstEvents
const live = note('live, from another connection')
await within(other.publish(live), 'OK for the live event')
result.live = (await mine.until((e) => e.id === live.id, 'the live event')).id

// The gateway's answer, published on the Python side once this subscription is live.
const answers = waiter()
relay.subscribe([{ authors: [gatewayPubkey], '#p': [pubkey] }], {
  onevent: (event) => answers.push(event),
  oneose: () => emit({ ready: 'gateway' }),
})
const answer = await answers.until(() => true, "the gateway's answer")
result.gateway = { id: answer.id, kind: answer.kind, content: answer.content }

// CLOSE: nothing more reaches the socket for that subscription.
sub.close()
await sleep(QUIET_MS)
const afterClose = note('after CLOSE')
await within(other.publish(afterClose), 'OK after CLOSE')
await sleep(QUIET_MS)
result.after_close = raw.filter((m) => m.includes(afterClose.id)).length

relay.close()
other.close()
emit({ done: result })
process.exit(0)
