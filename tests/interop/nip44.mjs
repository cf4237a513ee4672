// NIP-44 v2 through nostr-tools.
import * as nip44 from 'nostr-tools/nip44'
import { bytesToHex, hexToBytes } from 'nostr-tools/utils'
import { serve } from './stdio.mjs'

await serve({
  conversation_key: ({ secret, pubkey }) =>
    bytesToHex(nip44.getConversationKey(hexToBytes(secret), pubkey)),
  encrypt: ({ plaintext, conversation_key, nonce }) =>
    nip44.encrypt(
      plaintext,
      hexToBytes(conversation_key),
      nonce === undefined ? undefined : hexToBytes(nonce),
    ),
  decrypt: ({ payload, conversation_key }) => nip44.decrypt(payload, hexToBytes(conversation_key)),
})
