// Byte helpers the noble packages leave to callers.
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js'

export { bytesToHex, hexToBytes }

export function sameBytes(a, b) {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** Lexicographic byte order (what BIP341 sorts branch hashes by). */
export function compareBytes(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i]
  return a.length - b.length
}

const HEX64 = /^[0-9a-f]{64}$/

export function isHex32(value) {
  return typeof value === 'string' && HEX64.test(value)
}
