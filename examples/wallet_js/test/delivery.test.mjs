// The wallet's reading of OK answers and its pauses between attempts (lib/delivery.mjs),
// run with `node --test test/delivery.test.mjs` (tests/ceremony/test_wallet_js.py runs it).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Backoff, Pacer, Verdict, judge, publishOutcome } from '../lib/delivery.mjs'

test('OK answers are judged by their prefix', () => {
  const cases = [
    [true, '', Verdict.PUBLISHED],
    [true, 'duplicate: already have this event', Verdict.PUBLISHED],
    // Some relays answer a known event OK false; it is held all the same.
    [false, 'duplicate: already have this event', Verdict.PUBLISHED],
    [false, 'rate-limited: too many events from this pubkey, slow down', Verdict.RETRY],
    [false, 'error: could not store the event, try again later', Verdict.RETRY],
    [false, 'invalid: bad signature', Verdict.REFUSED],
    [false, 'blocked: not on the list', Verdict.REFUSED],
    [false, 'pow: difficulty 20 is less than 30', Verdict.REFUSED],
    [false, 'restricted: not allowed to write', Verdict.REFUSED],
    [false, 'auth-required: authenticate with NIP-42 AUTH first', Verdict.REFUSED],
    [false, 'mute: whatever a relay invents next', Verdict.REFUSED],
    [false, 'rate limited, no prefix', Verdict.REFUSED],
    [false, '', Verdict.REFUSED],
  ]
  for (const [accepted, reason, verdict] of cases) {
    assert.equal(judge(accepted, reason), verdict, `${accepted} ${JSON.stringify(reason)}`)
  }
})

test("nostr-tools' publish settling is read as an OK, a missing OK or a lost connection", () => {
  assert.deepEqual(publishOutcome({ resolved: true, value: 'duplicate: have it' }), [
    Verdict.PUBLISHED,
    'duplicate: have it',
  ])
  const refused = new Error('rate-limited: slow down')
  assert.deepEqual(publishOutcome({ resolved: false, error: refused, stillConnected: true }), [
    Verdict.RETRY,
    'rate-limited: slow down',
  ])
  const invalid = new Error('invalid: bad signature')
  assert.deepEqual(publishOutcome({ resolved: false, error: invalid, stillConnected: true }), [
    Verdict.REFUSED,
    'invalid: bad signature',
  ])
  const timedOut = new Error('publish timed out')
  assert.equal(publishOutcome({ resolved: false, error: timedOut, stillConnected: true })[0], Verdict.RETRY)
  // nostr-tools rejects open publishes with the close reason, which has no prefix: it must
  // not be taken for a final refusal.
  const closed = new Error('relay connection closed')
  assert.deepEqual(publishOutcome({ resolved: false, error: closed, stillConnected: false }), [
    Verdict.RETRY,
    'connection lost before the OK',
  ])
  const notSent = Object.assign(new Error('Tried to send'), { name: 'SendingOnClosedConnection' })
  assert.equal(publishOutcome({ resolved: false, error: notSent, stillConnected: true })[0], Verdict.RETRY)
})

test('the backoff doubles up to its cap, with jitter in the upper half', () => {
  const backoff = new Backoff({ initial: 250, maximum: 4000 })
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoff.ceiling(n)),
    [250, 500, 1000, 2000, 4000, 4000, 4000, 4000],
  )
  assert.equal(backoff.ceiling(10_000), 4000)
  for (const failures of [1, 3, 6]) {
    const ceiling = backoff.ceiling(failures)
    assert.equal(backoff.pause(failures, () => 0), ceiling / 2)
    assert.ok(Math.abs(backoff.pause(failures, () => 0.999999) - ceiling) < 0.01)
  }
  const pauses = new Set(Array.from({ length: 50 }, () => backoff.pause(4)))
  assert.ok(pauses.size > 1)
  for (const p of pauses) assert.ok(p >= 1000 && p <= 2000, String(p))
  assert.throws(() => backoff.ceiling(0), RangeError)
})

test('the pacer hands out turns one interval apart, then none once drained', () => {
  let now = 1000
  const pacer = new Pacer(200, () => now)
  assert.deepEqual([1, 2, 3, 4, 5].map(() => pacer.reserve()), [0, 200, 400, 600, 800])
  now += 5000
  assert.equal(pacer.reserve(), 0)
})
