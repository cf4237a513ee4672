// An ArkRelay wallet on one Nostr relay (PROTOCOL.md): service requests, intents, and the
// signing ceremony, answering only challenges that pass ./checks.mjs. Every publish waits
// for the relay's OK and is judged by ./delivery.mjs; the wallet reconnects when the relay
// goes away and sends again, paced, what the gateway may not have stored.
import crypto from 'node:crypto'
import WebSocket from 'ws'
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay'
import { finalizeEvent, getPublicKey } from 'nostr-tools/pure'
import * as nip04 from 'nostr-tools/nip04'
import * as nip44 from 'nostr-tools/nip44'
import { schnorr } from '@noble/curves/secp256k1.js'
import { bytesToHex, hexToBytes, isHex32 } from './bytes.mjs'
import {
  KIND_CHALLENGE,
  Refusal,
  Session,
  arkParams,
  challengeD,
  checkChallenge,
} from './checks.mjs'
import { compareWithGateway, defaultScript, fetchVtxos } from './arkserver.mjs'
import { Backoff, Pacer, Verdict, publishOutcome, reasonPrefix } from './delivery.mjs'

// node 20 has no global WebSocket.
useWebSocketImplementation(WebSocket)

export const Kind = Object.freeze({
  SERVICE_REQUEST: 31500,
  SERVICE_RESPONSE: 31501,
  NOTIFICATION: 31502,
  INTENT: 31510,
  CHALLENGE: KIND_CHALLENGE,
  SIGNING_RESPONSE: 31512,
  CONFIRMATION: 31340,
  FAILURE: 31341,
})
const ENCRYPTED = new Set([31500, 31501, 31502, 31511, 31512, 31341])
/** How far back the subscription reaches: the wallet only cares about what it starts now,
 * and the margin covers a relay clock a little ahead of ours. */
const LOOKBACK_S = 60
const INTENT_LIFETIME_S = 600
/** Unread messages kept; the gateway's public 31340s for other wallets arrive here too. */
const INBOX_LIMIT = 1024
/** How long one attempt waits for its OK before the event goes again. */
const ACK_TIMEOUT_MS = 10_000
/** Pauses between attempts at one event refused for the moment. */
const BACKOFF = new Backoff({ initial: 250, maximum: 4000 })
/** Sends again leave at most 5 a second, half the gateway endpoint's default per-pubkey
 * rate, so a reconnect does not spend the wallet's whole allowance at once. */
const RESEND_INTERVAL_MS = 200
/** How long what is sent again after a reconnect keeps being tried. */
const RESEND_WINDOW_MS = 120_000
const RECONNECT_INITIAL_MS = 200
const RECONNECT_MAX_MS = 2000
const CONNECT_TIMEOUT_MS = 30_000
/** Intents and responses kept to send again after a reconnect. */
const PENDING_LIMIT = 256

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function deferred() {
  let resolve
  const promise = new Promise((r) => (resolve = r))
  return { promise, resolve }
}

export class WalletTimeout extends Error {
  constructor(what) {
    super(`timed out waiting for ${what}`)
    this.name = 'WalletTimeout'
  }
}

/** The relay refused an event for good (not `rate-limited:` / `error:`); `reason` is its
 * own words, prefix included. */
export class PublishRefused extends Error {
  constructor(event, reason) {
    super(`the relay refused ${event.kind} ${event.id}: ${reason}`)
    this.name = 'PublishRefused'
    this.eventId = event.id
    this.reason = reason
  }
}

/** The gateway answered a service request with status "error". */
export class ServiceError extends Error {
  constructor(action, error) {
    super(`${action}: ${error?.message ?? 'error'} (code ${error?.code})`)
    this.name = 'ServiceError'
    this.code = error?.code
    this.response = error
  }
}

function tagValue(event, name) {
  return event.tags.find((t) => t[0] === name && t.length > 1)?.[1]
}

function tagValues(event, name) {
  return event.tags.filter((t) => t[0] === name && t.length > 1).map((t) => t[1])
}

const nowS = () => Math.floor(Date.now() / 1000)

export class ArkRelayWallet {
  /**
   * @param relayUrl  ws:// or wss:// URL of the relay the gateway listens on
   * @param gateway   the gateway's service pubkey (64 hex)
   * @param secret    the wallet's secret key (64 hex or 32 bytes)
   * @param onEvent   called with one plain object per thing worth reporting
   * @param reconnect open a new connection when the relay goes away (else fail)
   */
  constructor({
    relayUrl,
    gateway,
    secret,
    network = 'regtest',
    onEvent = () => {},
    reconnect = true,
  }) {
    if (!isHex32(gateway)) throw new Error('the gateway pubkey must be 64 lowercase hex characters')
    this.relayUrl = relayUrl
    this.gateway = gateway
    this.secret = typeof secret === 'string' ? hexToBytes(secret) : secret
    this.pubkey = getPublicKey(this.secret)
    this.network = network
    this.onEvent = onEvent
    this.relay = null
    this._inbox = []
    this._seen = new Set()
    this._wake = new Set()
    this._keys = new Map()
    this._ark = null
    this._closing = false
    this.reconnect = reconnect
    this.reconnects = 0
    /** Attempts sent again, by the relay's prefix ('rate-limited', 'error') or 'no answer'. */
    this.retried = new Map()
    // Resolved, and replaced by null, when a connection is up and subscribed.
    this._up = deferred()
    this._broken = null
    /** Intents and responses whose session has no outcome yet: sent again after a
     * reconnect, since the gateway may have gone down before it stored them. */
    this._pending = new Map()
    /** Event id -> publishes of it under way (nostr-tools keys its OK waits by id, so one
     * event must never be in flight twice). */
    this._inFlight = new Map()
    this._pacer = new Pacer(RESEND_INTERVAL_MS)
    /** Session id -> why its intent or response could not be sent again. */
    this._undelivered = new Map()
  }

  static async connect(options, { deadline } = {}) {
    const wallet = new ArkRelayWallet(options)
    await wallet.open(deadline ?? Date.now() + 30_000)
    return wallet
  }

  async open(deadline) {
    this._since = nowS() - LOOKBACK_S
    await this._connect(deadline)
  }

  async _connect(deadline) {
    const connecting = Relay.connect(this.relayUrl)
    const relay = await this._within(connecting, deadline, `a connection to ${this.relayUrl}`)
    relay.onnotice = (message) => this.onEvent({ event: 'notice', message })
    let eose, dropped
    const live = new Promise((resolve, reject) => {
      eose = resolve
      dropped = reject
    })
    relay.onclose = () => {
      dropped(new Error(`${this.relayUrl} closed the connection before EOSE`))
      this._lost(relay)
    }
    const since = this._since
    const addressed = [
      Kind.SERVICE_RESPONSE,
      Kind.NOTIFICATION,
      Kind.CHALLENGE,
      Kind.CONFIRMATION,
      Kind.FAILURE,
    ]
    // nostr-tools checks each event's id and signature before it reaches `onevent`. After a
    // reconnect the same filters ask again from the start; `_receive` drops what it has seen.
    const subscription = relay.subscribe(
      [
        { kinds: addressed, '#p': [this.pubkey], since },
        { kinds: [Kind.CONFIRMATION], authors: [this.gateway], since },
      ],
      {
        onevent: (event) => this._receive(event),
        oninvalidevent: (event) =>
          this.onEvent({ event: 'ignored', id: event?.id, reason: 'bad id or signature' }),
        oneose: () => eose(),
        onclose: (reason) => {
          if (this._closing) return
          this.onEvent({ event: 'notice', message: `subscription closed: ${reason}` })
        },
      },
    )
    // Nothing is sent before the subscription is live, so no answer can slip past it.
    try {
      await this._within(live, deadline, 'the end of stored events (EOSE)')
    } catch (err) {
      relay.onclose = null
      relay.close()
      throw err
    }
    this.relay = relay
    this._subscription = subscription
    const up = this._up
    this._up = null
    up?.resolve()
  }

  _lost(relay) {
    if (this._closing || relay !== this.relay || this._up !== null) return
    this._up = deferred()
    this.onEvent({ event: 'disconnected', relay: this.relayUrl })
    if (!this.reconnect) {
      this._broken = new Error(`the relay ${this.relayUrl} closed the connection`)
      this._up.resolve()
      return
    }
    this._reconnectLoop().catch((err) => {
      this._broken = err
      this._up?.resolve()
    })
  }

  async _reconnectLoop() {
    let delay = RECONNECT_INITIAL_MS
    while (!this._closing) {
      await sleep(delay)
      if (this._closing) return
      try {
        await this._connect(Date.now() + CONNECT_TIMEOUT_MS)
      } catch {
        delay = Math.min(RECONNECT_MAX_MS, delay * 2)
        continue
      }
      this.reconnects += 1
      this.onEvent({ event: 'reconnected', relay: this.relayUrl })
      this._resendPending()
      return
    }
  }

  /** The relay once a connection is up and subscribed (a lost one is reopened first). */
  async _whenUp(deadline, what) {
    for (;;) {
      if (this._broken !== null) throw this._broken
      if (this._up === null) return this.relay
      await this._within(this._up.promise, deadline, what)
    }
  }

  close() {
    this._closing = true
    this._broken = new Error('the wallet is closed')
    this._up?.resolve()
    this._subscription?.close()
    this.relay?.close()
  }

  // -- receiving --------------------------------------------------------------------

  _conversationKey(peer) {
    let key = this._keys.get(peer)
    if (key === undefined) {
      key = nip44.getConversationKey(this.secret, peer)
      this._keys.set(peer, key)
    }
    return key
  }

  _open(event) {
    let text = event.content
    if (ENCRYPTED.has(event.kind)) {
      // NIP-04 is accepted for compatibility; its ciphertext carries `?iv=` (PROTOCOL.md §1).
      text = text.includes('?iv=')
        ? nip04.decrypt(this.secret, event.pubkey, text)
        : nip44.decrypt(text, this._conversationKey(event.pubkey))
    }
    const content = JSON.parse(text)
    if (content === null || typeof content !== 'object' || Array.isArray(content)) {
      throw new Error('content is not a JSON object')
    }
    return content
  }

  _receive(event) {
    if (this._seen.has(event.id)) return
    this._seen.add(event.id)
    let content
    try {
      content = this._open(event)
    } catch (err) {
      const reason = `unreadable content: ${err.message}`
      this.onEvent({ event: 'ignored', id: event.id, kind: event.kind, reason })
      return
    }
    if (this._inbox.length >= INBOX_LIMIT) {
      const { event: dropped } = this._inbox.shift()
      this.onEvent({ event: 'ignored', id: dropped.id, reason: 'inbox full: dropped the oldest unread' })
    }
    this._inbox.push({ event, content })
    this._dropSettled(event)
    this._wakeAll()
  }

  _wakeAll() {
    for (const wake of this._wake) wake()
  }

  /** An outcome of the gateway ends its session: nothing of it needs sending again. */
  _dropSettled(event) {
    if (event.pubkey !== this.gateway) return
    if (event.kind !== Kind.CONFIRMATION && event.kind !== Kind.FAILURE) return
    const sessions = new Set(
      tagValues(event, 'e')
        .filter((id) => this._pending.has(id))
        .map((id) => this._pending.get(id).session),
    )
    for (const [id, { session }] of this._pending) {
      if (sessions.has(session)) this._pending.delete(id)
    }
  }

  /** Remove and return the first received message `pick` chooses from the inbox. For a
   * `session` whose intent or response could not be sent again after a reconnect, throw
   * why instead of waiting for an outcome that cannot come. */
  async take(pick, deadline, what, { session } = {}) {
    for (;;) {
      const failed = session === undefined ? undefined : this._undelivered.get(session)
      if (failed !== undefined) throw failed
      const chosen = pick(this._inbox)
      if (chosen !== undefined) {
        this._inbox.splice(this._inbox.indexOf(chosen), 1)
        return chosen
      }
      let wake
      const arrived = new Promise((resolve) => (wake = resolve))
      this._wake.add(wake)
      try {
        await this._within(arrived, deadline, what)
      } finally {
        this._wake.delete(wake)
      }
    }
  }

  async _within(promise, deadline, what) {
    let timer
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new WalletTimeout(what)), Math.max(0, deadline - Date.now()))
    })
    try {
      return await Promise.race([promise, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  // -- sending ----------------------------------------------------------------------

  _sign(kind, content, tags) {
    return finalizeEvent({ kind, created_at: nowS(), tags, content }, this.secret)
  }

  _encrypt(value) {
    return nip44.encrypt(JSON.stringify(value), this._conversationKey(this.gateway))
  }

  /**
   * Send `event` until the relay holds it (OK true, or `duplicate:`), before `deadline`.
   * `rate-limited:`, `error:`, no OK in time and a connection lost before the OK mean
   * sending it again after a pause (WalletTimeout when time runs out, naming the last
   * answer); any other refusal throws PublishRefused with the relay's reason. With
   * `session`, the event is kept to send again after a reconnect until that session ends.
   */
  async publish(event, deadline, { session } = {}) {
    if (session !== undefined) this._remember(event, session)
    this._enter(event.id)
    try {
      await this._deliver(event, deadline, false)
    } finally {
      this._leave(event.id)
    }
  }

  _remember(event, session) {
    this._pending.set(event.id, { event, session })
    while (this._pending.size > PENDING_LIMIT) {
      this._pending.delete(this._pending.keys().next().value)
    }
  }

  _enter(id) {
    this._inFlight.set(id, (this._inFlight.get(id) ?? 0) + 1)
  }

  _leave(id) {
    const left = this._inFlight.get(id) - 1
    if (left > 0) this._inFlight.set(id, left)
    else this._inFlight.delete(id)
  }

  async _deliver(event, deadline, paced) {
    const what = `${event.kind} ${event.id}`
    for (let failures = 1; ; failures++) {
      const [verdict, reason] = await this._attempt(event, deadline, paced)
      if (verdict === Verdict.PUBLISHED) return
      if (verdict === Verdict.REFUSED) throw new PublishRefused(event, reason)
      const cause = reasonPrefix(reason) || 'no answer'
      this.retried.set(cause, (this.retried.get(cause) ?? 0) + 1)
      const pause = BACKOFF.pause(failures)
      if (Date.now() + pause >= deadline) {
        throw new WalletTimeout(`the relay's OK for ${what} (${failures} attempts, last: ${reason})`)
      }
      this.onEvent({ event: 'retry', id: event.id, kind: event.kind, reason, attempt: failures })
      await sleep(pause)
      // A second attempt is a send again: it queues behind the others.
      paced = true
    }
  }

  async _attempt(event, deadline, paced) {
    const what = `a connection to send ${event.id}`
    let relay = await this._whenUp(deadline, what)
    if (paced) {
      const wait = this._pacer.reserve()
      if (Date.now() + wait >= deadline) throw new WalletTimeout(`a turn to send ${event.id} again`)
      await sleep(wait)
      relay = await this._whenUp(deadline, what)
    }
    // Read by nostr-tools when `publish` starts, so each attempt carries its own.
    relay.publishTimeout = Math.max(1, Math.min(ACK_TIMEOUT_MS, deadline - Date.now()))
    try {
      const value = await relay.publish(event)
      return publishOutcome({ resolved: true, value })
    } catch (error) {
      const stillConnected = relay === this.relay && relay.connected && this._up === null
      return publishOutcome({ resolved: false, error, stillConnected })
    }
  }

  /** After a reconnect: send again, one at a time, what no publish is sending right now. */
  _resendPending() {
    const waiting = [...this._pending.values()].filter(({ event }) => !this._inFlight.has(event.id))
    for (const { event } of waiting) this._enter(event.id)
    if (waiting.length > 0) this._resend(waiting)
  }

  async _resend(waiting) {
    const deadline = Date.now() + RESEND_WINDOW_MS
    for (const { event, session } of waiting) {
      try {
        if (this._pending.has(event.id)) await this._deliver(event, deadline, true)
      } catch (err) {
        this._pending.delete(event.id)
        this._undelivered.set(session, err)
        const reason = err.reason ?? err.message
        this.onEvent({ event: 'undelivered', id: event.id, session_id: session, reason })
        this._wakeAll()
      } finally {
        this._leave(event.id)
      }
    }
  }

  /** Send a 31500 and return the content of the gateway's 31501 (status "error": ServiceError). */
  async request(action, fields = {}, { deadline = Date.now() + 30_000 } = {}) {
    const requestId = crypto.randomUUID()
    const content = this._encrypt({ action, request_id: requestId, ...fields })
    const event = this._sign(Kind.SERVICE_REQUEST, content, [
      ['p', this.gateway],
      ['d', requestId],
    ])
    await this.publish(event, deadline)
    const d = `resp:${event.id}`
    const answers = (m) =>
      m.event.kind === Kind.SERVICE_RESPONSE &&
      m.event.pubkey === this.gateway &&
      tagValue(m.event, 'd') === d
    const response = await this.take(
      (inbox) => inbox.find(answers),
      deadline,
      `the answer to ${action} (request ${event.id})`,
    )
    const { content: answer } = response
    if (answer.status === 'error') throw new ServiceError(action, answer.error)
    return answer
  }

  /** get_info, keeping the Ark server parameters the checks need. */
  async info(options) {
    const info = await this.request('get_info', {}, options)
    if (info.network !== this.network) {
      throw new Error(`the gateway runs on ${info.network}, this wallet on ${this.network}`)
    }
    this._ark = info.ark ? arkParams(info.ark) : null
    this.arkServerUrl = info.ark?.server_url ?? ''
    this.fees = info.fees
    return info
  }

  /**
   * This wallet's VTXOs as the Ark server itself lists them (its REST indexer, at the URL
   * get_info names), beside the gateway's sync_state and where the two disagree.
   */
  async serverView({ deadline = Date.now() + 30_000 } = {}) {
    await this.info({ deadline })
    if (this._ark === null) throw new Error('the gateway announced no Ark server (get_info.ark)')
    const state = await this.request('sync_state', {}, { deadline })
    const script = defaultScript(this.pubkey, this._ark)
    const server = await fetchVtxos(this.arkServerUrl, [script], { deadline })
    return { serverUrl: this.arkServerUrl, state, server, problems: compareWithGateway(server, state) }
  }

  buildIntent(type, params, { actionId = crypto.randomUUID(), expiresIn = INTENT_LIFETIME_S } = {}) {
    const content = {
      action_id: actionId,
      type,
      params,
      expires_at: nowS() + expiresIn,
      network: this.network,
      protocol_version: '1.0',
    }
    return this._sign(Kind.INTENT, JSON.stringify(content), [
      ['p', this.gateway],
      ['d', actionId],
    ])
  }

  /** The session an intent this wallet signed opens (also one a solver submits in a batch):
   * what `answer` holds that session's challenges to. */
  track(intentEvent) {
    return new Session(intentEvent)
  }

  _isOutcome(session) {
    const { id } = session.intentEvent
    const actionId = session.intent.action_id
    return (m) => {
      if (m.event.pubkey !== this.gateway) return false
      const answered = tagValues(m.event, 'e')
      if (m.event.kind === Kind.CONFIRMATION) return answered.includes(id)
      if (m.event.kind !== Kind.FAILURE) return false
      return answered.length > 0 ? answered.includes(id) : m.content.ref_action_id === actionId
    }
  }

  /**
   * Publish an intent and see its session through: check and answer each challenge, and
   * return {outcome, refusal}. `outcome` is the 31340/31341 message, or null if none came
   * before `deadline` after a refusal; without a refusal running out throws WalletTimeout.
   */
  async runIntent(type, params, { deadline, actionId } = {}) {
    if (this._ark === null) await this.info({ deadline })
    const intent = this.buildIntent(type, params, { actionId })
    const session = this.track(intent)
    await this.publish(intent, deadline, { session: session.id })
    const { action_id: sent } = session.intent
    this.onEvent({ event: 'intent', id: intent.id, action_id: sent, session_id: session.id, type })
    const isOutcome = this._isOutcome(session)
    const isChallenge = (m) =>
      m.event.kind === Kind.CHALLENGE && m.content.session_id === session.id
    let refusal = null
    for (;;) {
      let message
      try {
        message = await this.take(
          (inbox) => inbox.find(isOutcome) ?? lowestStep(inbox.filter(isChallenge)),
          deadline,
          `a challenge or the outcome of intent ${intent.id}`,
          { session: session.id },
        )
      } catch (err) {
        if (err instanceof WalletTimeout && refusal !== null) return { outcome: null, refusal }
        throw err
      }
      if (isOutcome(message)) {
        this.onEvent(outcomeReport(message))
        return { outcome: message, refusal }
      }
      if (refusal !== null) continue
      if (message.event.pubkey !== this.gateway) {
        // Anyone can encrypt a challenge-shaped message to us; only the gateway's count.
        const reason = `challenge from ${message.event.pubkey}, not the gateway`
        this.onEvent({ event: 'ignored', id: message.event.id, reason })
        continue
      }
      refusal = await this.answer(message, session, deadline)
    }
  }

  /** Check `message` (a 31511 for `session`) and answer it; returns why it refused, or null. */
  async answer(message, session, deadline) {
    const { event, content } = message
    const step = content.step_index
    this.onEvent({
      event: 'challenge',
      step,
      step_total: content.step_total,
      type: content.type,
      tx_role: content.context?.tx_role,
      session_id: content.session_id,
      human: content.context?.human,
    })
    try {
      checkChallenge({ event, content, wallet: this._walletView(), session })
    } catch (err) {
      if (!(err instanceof Refusal)) throw err
      this.onEvent({ event: 'refused', step, session_id: session.id, reason: err.message })
      return err.message
    }
    const signature = bytesToHex(schnorr.sign(hexToBytes(content.payload_to_sign), this.secret))
    const response = this._sign(
      Kind.SIGNING_RESPONSE,
      this._encrypt({
        session_id: content.session_id,
        type: content.type,
        signature,
        payload_ref: content.payload_ref,
        algo: 'BIP340',
        pubkey: this.pubkey,
      }),
      [
        ['p', this.gateway],
        ['d', challengeD(content.session_id, step)],
        ['e', event.id],
      ],
    )
    await this.publish(response, deadline, { session: content.session_id })
    this.onEvent({ event: 'signed', step, session_id: session.id, response_id: response.id })
    return null
  }

  _walletView() {
    return { pubkey: this.pubkey, gateway: this.gateway, ark: this._ark }
  }

  /**
   * Ask for a Lightning lift invoice; `onInvoice` gets the pending response. Resolves with
   * the gateway's 31340 (`d` = `lift:<payment_hash>`) or the 31502 that ended the lift.
   */
  async lift(amount, { assetId = 'gBTC', deadline, onInvoice = () => {} } = {}) {
    const pending = await this.request('lift_lightning', { asset_id: assetId, amount }, { deadline })
    const hash = pending.payment_hash
    onInvoice(pending)
    const d = `lift:${hash}`
    return await this.take(
      (inbox) =>
        inbox.find(
          (m) =>
            m.event.pubkey === this.gateway &&
            ((m.event.kind === Kind.CONFIRMATION && tagValue(m.event, 'd') === d) ||
              (m.event.kind === Kind.NOTIFICATION && m.content.payment_hash === hash)),
        ),
      deadline,
      `the confirmation of lift ${hash}`,
    )
  }
}

function lowestStep(challenges) {
  let best
  for (const m of challenges) {
    if (best === undefined || m.content.step_index < best.content.step_index) best = m
  }
  return best
}

/** The one-line report of a 31340/31341/31502. */
export function outcomeReport({ event, content }) {
  const report = { event: 'outcome', kind: event.kind, id: event.id, d: tagValue(event, 'd') }
  for (const [key, value] of Object.entries(content)) if (!(key in report)) report[key] = value
  return report
}
