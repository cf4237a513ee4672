// What the wallet makes of the relay's OK to each event it publishes (NIP-01), and how long
// it waits before sending an event again.
//
// OK true means the relay holds the event, whatever the reason says; so does OK false with
// `duplicate:`. `rate-limited:` and `error:` say "not now", like an OK that never comes or
// a connection lost before it: the same event goes again, later. Any other refusal
// (`invalid:`, `blocked:`, `pow:`, `restricted:`, `auth-required:`, no prefix) is final:
// the same bytes would be refused again, so the caller gets the relay's reason.

export const Verdict = Object.freeze({
  PUBLISHED: 'published',
  RETRY: 'retry',
  REFUSED: 'refused',
})

/** Refusals that are about the moment, not the event. */
export const RETRY_PREFIXES = new Set(['rate-limited', 'error'])

/** The machine-readable word before the first colon, or '' when there is none. */
export function reasonPrefix(reason) {
  const text = String(reason ?? '')
  const colon = text.indexOf(':')
  return colon < 0 ? '' : text.slice(0, colon).trim()
}

export function judge(accepted, reason) {
  if (accepted) return Verdict.PUBLISHED
  const prefix = reasonPrefix(reason)
  if (prefix === 'duplicate') return Verdict.PUBLISHED
  if (RETRY_PREFIXES.has(prefix)) return Verdict.RETRY
  return Verdict.REFUSED
}

/**
 * Capped exponential pauses with jitter, in milliseconds. After `failures` failed attempts
 * (>= 1) the pause lies in [ceiling / 2, ceiling], ceiling = min(maximum, initial *
 * 2^(failures - 1)): the fixed half keeps a refused burst from coming back as a burst, the
 * random half keeps wallets refused together from retrying together.
 */
export class Backoff {
  constructor({ initial = 250, maximum = 4000 } = {}) {
    this.initial = initial
    this.maximum = maximum
  }

  ceiling(failures) {
    if (!(failures >= 1)) throw new RangeError('a pause follows at least one failed attempt')
    return Math.min(this.maximum, this.initial * 2 ** Math.min(failures - 1, 32))
  }

  pause(failures, rand = Math.random) {
    const ceiling = this.ceiling(failures)
    return ceiling / 2 + (rand() * ceiling) / 2
  }
}

/** Lets sends go at least `intervalMs` apart, in the order they asked: what goes out again
 * after a reconnect leaves one at a time, not as one burst a per-pubkey rate limit cuts. */
export class Pacer {
  constructor(intervalMs, now = () => Date.now()) {
    this.intervalMs = intervalMs
    this._now = now
    this._next = -Infinity
  }

  /** The wait before this caller's turn, in ms; the turn is taken at once. */
  reserve() {
    const now = this._now()
    const slot = Math.max(now, this._next)
    this._next = slot + this.intervalMs
    return slot - now
  }
}

/**
 * What nostr-tools' `Relay.publish` settling means, as [verdict, reason]. nostr-tools
 * resolves with the reason on OK true and rejects with `new Error(reason)` on OK false; it
 * also rejects with 'publish timed out' when no OK came within `publishTimeout`, and with
 * the close reason (or SendingOnClosedConnection) when the connection went away, so those
 * are told apart first: by the error's class and by whether that relay is still connected.
 */
export function publishOutcome({ resolved, value, error, stillConnected }) {
  if (resolved) return [Verdict.PUBLISHED, String(value ?? '')]
  if (error?.name === 'SendingOnClosedConnection' || !stillConnected) {
    return [Verdict.RETRY, 'connection lost before the OK']
  }
  const reason = String(error?.message ?? error)
  if (reason === 'publish timed out') return [Verdict.RETRY, 'no OK in time']
  return [judge(false, reason), reason]
}
