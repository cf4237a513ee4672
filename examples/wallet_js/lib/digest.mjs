// What a wallet signs for a `sign_payload` challenge (PROTOCOL.md §3), recomputed here so
// that the wallet never signs a digest it was merely told about.
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex, concatBytes, utf8ToBytes } from '@noble/hashes/utils.js'

// Python sorts keys by code point; JavaScript's default sort compares UTF-16 code units,
// which orders characters beyond U+FFFF before U+E000..U+FFFF.
function byCodePoint(a, b) {
  const x = [...a]
  const y = [...b]
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0)
    if (d !== 0) return d
  }
  return x.length - y.length
}

/**
 * Canonical JSON: sorted keys, no insignificant whitespace, non-ASCII left as UTF-8.
 *
 * Numbers must be safe integers. JSON.parse has already turned `100.0` into `100`, so the
 * gateway's spelling of a non-integer cannot be recovered; refusing beats signing a guess.
 */
export function canonicalJson(value) {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') {
    // JSON.stringify escapes exactly what the reference encoder escapes: `"`, `\` and
    // control characters below U+0020 (short forms where JSON has them).
    return JSON.stringify(value)
  }
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) {
      throw new TypeError(`cannot canonicalize the number ${value}: only safe integers are exact`)
    }
    return String(value)
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (typeof value === 'object') {
    const keys = Object.keys(value).sort(byCodePoint)
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`
  }
  throw new TypeError(`cannot canonicalize a ${typeof value}`)
}

/** hex(sha256(utf8(domain) || 0x0a || canonical_json(payload))) */
export function signPayloadDigest(domain, payload) {
  const data = concatBytes(utf8ToBytes(domain), Uint8Array.of(0x0a), utf8ToBytes(canonicalJson(payload)))
  return bytesToHex(sha256(data))
}

export function payloadRef(payloadToSign) {
  return `sha256:${payloadToSign}`
}
