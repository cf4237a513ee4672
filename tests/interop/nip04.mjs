// NIP-04 through nostr-tools.
import * as nip04 from 'nostr-tools/nip04'
import { hexToBytes } from 'nostr-tools/utils'
import { serve } from './stdio.mjs'

await serve({
  encrypt: ({ secret, pubkey, plaintext }) => nip04.encrypt(hexToBytes(secret), pubkey, plaintext),
  decrypt: ({ secret, pubkey, content }) => nip04.decrypt(hexToBytes(secret), pubkey, content),
})
