// NIP-19 through nostr-tools; decoded values are flattened to plain JSON.
import * as nip19 from 'nostr-tools/nip19'
import { bytesToHex, hexToBytes } from 'nostr-tools/utils'
import { serve } from './stdio.mjs'

function flatten(decoded) {
  const { type, data } = decoded
  if (type === 'nsec') return { type, data: bytesToHex(data) }
  if (type === 'npub' || type === 'note') return { type, data }
  return { type, data: { ...data } }
}

await serve({
  npub: ({ hex }) => nip19.npubEncode(hex),
  nsec: ({ hex }) => nip19.nsecEncode(hexToBytes(hex)),
  note: ({ hex }) => nip19.noteEncode(hex),
  nprofile: ({ pubkey, relays }) => nip19.nprofileEncode({ pubkey, relays }),
  nevent: ({ id, relays, author, kind }) =>
    nip19.neventEncode({ id, relays, author: author ?? undefined, kind: kind ?? undefined }),
  decode: ({ text }) => flatten(nip19.decode(text)),
})
