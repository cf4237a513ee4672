// NIP-01 events through nostr-tools: sign, verify, serialise.
import { finalizeEvent, getEventHash, getPublicKey, serializeEvent, verifyEvent } from 'nostr-tools/pure'
import { hexToBytes } from 'nostr-tools/utils'
import { serve } from './stdio.mjs'

function plain(event) {
  const { id, pubkey, created_at, kind, tags, content, sig } = event
  return { id, pubkey, created_at, kind, tags, content, sig }
}

await serve({
  pubkey: ({ secret }) => getPublicKey(hexToBytes(secret)),
  sign: ({ secret, kind, content, tags, created_at }) =>
    plain(finalizeEvent({ kind, content, tags, created_at }, hexToBytes(secret))),
  // A fresh object each time: verifyEvent caches its verdict on the object it is given.
  verify: ({ event }) => verifyEvent({ ...event }),
  serialize: ({ pubkey, created_at, kind, tags, content }) => {
    const unsigned = { pubkey, created_at, kind, tags, content }
    return { serialized: serializeEvent(unsigned), id: getEventHash(unsigned) }
  },
})
