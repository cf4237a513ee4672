#!/usr/bin/env node
// The ArkRelay reference wallet on the command line. One JSON object per line on stdout;
// diagnostics on stderr. See README.md for the commands and the exit codes.
import { parseArgs } from 'node:util'
import {
  ArkRelayWallet,
  PublishRefused,
  ServiceError,
  WalletTimeout,
  outcomeReport,
} from './lib/wallet.mjs'
import { isHex32 } from './lib/bytes.mjs'

const EXIT = Object.freeze({ OK: 0, FAILED: 1, USAGE: 2, REFUSED: 3, TIMEOUT: 4, ERROR: 5 })

const USAGE = `usage: cli.mjs --relay <ws url> --gateway <hex pubkey> --secret <hex secret key>
               [--timeout <seconds>] [--network regtest] [--asset gBTC] <command> ...
commands:
  info                          the gateway's get_info
  balance                       sync_state: this wallet's VTXOs and balances
  server                        this wallet's VTXOs from the Ark server's own indexer,
                                compared with sync_state (exit 1 when they disagree)
  status <action_id>            get_status of one of this wallet's intents
  lift <amount>                 a Lightning invoice that lifts <amount> into a VTXO
  transfer <recipient> <amount> an ark:transfer to the x-only key <recipient>
  land <bolt11> <amount>        a lightning:land paying <bolt11> from this wallet's VTXOs
  intent <type> <params json>   any other intent type (plugin types answer sign_payload)
The secret may come from ARKRELAY_WALLET_SECRET instead of --secret.`

class UsageError extends Error {}

const emit = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`)

function positiveInt(text, what) {
  if (!/^[1-9][0-9]*$/.test(text ?? '') || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`${what} must be a positive integer, got ${JSON.stringify(text)}`)
  }
  return Number(text)
}

function parse(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      relay: { type: 'string' },
      gateway: { type: 'string' },
      secret: { type: 'string' },
      timeout: { type: 'string', default: '60' },
      network: { type: 'string', default: 'regtest' },
      asset: { type: 'string', default: 'gBTC' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) return { help: true }
  const secret = values.secret ?? process.env.ARKRELAY_WALLET_SECRET
  if (!values.relay) throw new UsageError('--relay is required')
  if (!isHex32(values.gateway ?? '')) throw new UsageError('--gateway must be 64 lowercase hex characters')
  if (!isHex32(secret ?? '')) throw new UsageError('--secret must be 64 lowercase hex characters')
  const timeout = Number(values.timeout)
  if (!(timeout > 0)) throw new UsageError('--timeout must be a positive number of seconds')
  const [command, ...args] = positionals
  if (command === undefined) throw new UsageError('no command')
  return { ...values, secret, timeout, command, args }
}

function arity(args, n, names) {
  if (args.length !== n) throw new UsageError(`expected ${names}`)
}

/** The fee rule (PROTOCOL.md §2) with get_info's figures: a flat fee per transfer, and for
 * a land parts per million of the amount, rounded up, in the landed asset. */
function transferFee(fees) {
  return { asset_id: fees.fee_asset, amount: fees.transfer }
}

function landFee(fees, asset, amount) {
  const ppm = BigInt(fees.land_ppm)
  return { asset_id: asset, amount: Number((BigInt(amount) * ppm + 999_999n) / 1_000_000n) }
}

async function ceremony(wallet, type, params, deadline) {
  const { outcome, refusal } = await wallet.runIntent(type, params, { deadline })
  if (refusal !== null) return EXIT.REFUSED
  return outcome.event.kind === 31340 ? EXIT.OK : EXIT.FAILED
}

async function run(options, wallet, deadline) {
  const { command, args } = options
  const within = { deadline }
  switch (command) {
    case 'info': {
      arity(args, 0, 'no arguments')
      emit({ event: 'info', ...(await wallet.info(within)) })
      return EXIT.OK
    }
    case 'balance': {
      arity(args, 0, 'no arguments')
      emit({ event: 'balance', ...(await wallet.request('sync_state', {}, within)) })
      return EXIT.OK
    }
    case 'server': {
      arity(args, 0, 'no arguments')
      const view = await wallet.serverView(within)
      emit({
        event: 'server',
        server_url: view.serverUrl,
        vtxos: view.server,
        balance: view.server.reduce((sum, v) => sum + v.amount, 0),
        gateway_balances: view.state.balances,
        agrees: view.problems.length === 0,
        problems: view.problems,
      })
      return view.problems.length === 0 ? EXIT.OK : EXIT.FAILED
    }
    case 'status': {
      arity(args, 1, 'status <action_id>')
      emit({ event: 'status', ...(await wallet.request('get_status', { action_id: args[0] }, within)) })
      return EXIT.OK
    }
    case 'lift': {
      arity(args, 1, 'lift <amount>')
      const amount = positiveInt(args[0], 'amount')
      const message = await wallet.lift(amount, {
        assetId: options.asset,
        deadline,
        onInvoice: (p) =>
          emit({
            event: 'invoice',
            bolt11: p.invoice,
            payment_hash: p.payment_hash,
            amount: p.amount,
            asset_id: p.asset_id,
            expires_at: p.expires_at,
          }),
      })
      emit(outcomeReport(message))
      if (message.event.kind !== 31340) return EXIT.FAILED
      // The confirmation is the gateway's word; it must at least say what was promised.
      const created = message.content.created ?? []
      const ours = created.some((m) => m.owner === wallet.pubkey && m.amount === amount)
      if (!ours) {
        emit({ event: 'error', message: `the confirmation creates no VTXO of ${amount} for this wallet` })
        return EXIT.FAILED
      }
      return EXIT.OK
    }
    case 'transfer': {
      arity(args, 2, 'transfer <recipient> <amount>')
      const [recipient, amountText] = args
      if (!isHex32(recipient)) throw new UsageError('recipient must be a 64-hex x-only public key')
      const amount = positiveInt(amountText, 'amount')
      const info = await wallet.info(within)
      const params = {
        asset_id: options.asset,
        amount,
        recipient_pubkey: recipient,
        fee: transferFee(info.fees),
      }
      return await ceremony(wallet, 'ark:transfer', params, deadline)
    }
    case 'land': {
      arity(args, 2, 'land <bolt11> <amount>')
      const [invoice, amountText] = args
      const amount = positiveInt(amountText, 'amount')
      const info = await wallet.info(within)
      const params = {
        asset_id: options.asset,
        amount,
        lightning_invoice: invoice,
        fee: landFee(info.fees, options.asset, amount),
      }
      return await ceremony(wallet, 'lightning:land', params, deadline)
    }
    case 'intent': {
      arity(args, 2, 'intent <type> <params json>')
      let params
      try {
        params = JSON.parse(args[1])
      } catch (err) {
        throw new UsageError(`params are not JSON: ${err.message}`)
      }
      await wallet.info(within)
      return await ceremony(wallet, args[0], params, deadline)
    }
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`)
  }
}

async function main(argv) {
  let options
  try {
    options = parse(argv)
  } catch (err) {
    process.stderr.write(`${err.message}\n${USAGE}\n`)
    return EXIT.USAGE
  }
  if (options.help) {
    process.stdout.write(`${USAGE}\n`)
    return EXIT.OK
  }
  const deadline = Date.now() + options.timeout * 1000
  const report = (obj) => {
    emit(obj)
    if (obj.reason !== undefined) process.stderr.write(`${obj.event}: ${obj.reason}\n`)
  }
  let wallet
  try {
    wallet = await ArkRelayWallet.connect(
      {
        relayUrl: options.relay,
        gateway: options.gateway,
        secret: options.secret,
        network: options.network,
        onEvent: report,
      },
      { deadline },
    )
    emit({ event: 'connected', relay: options.relay, pubkey: wallet.pubkey })
    return await run(options, wallet, deadline)
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n${USAGE}\n`)
      return EXIT.USAGE
    }
    if (err instanceof WalletTimeout) {
      emit({ event: 'timeout', reason: err.message })
      return EXIT.TIMEOUT
    }
    if (err instanceof PublishRefused) {
      // The relay's own reason, for the user to act on (a key it blocks, an event too big).
      emit({ event: 'error', id: err.eventId, reason: err.reason, message: err.message })
      return EXIT.ERROR
    }
    if (err instanceof ServiceError) {
      emit({ event: 'error', code: err.code, message: err.message })
      return EXIT.FAILED
    }
    emit({ event: 'error', message: err instanceof Error ? err.message : String(err) })
    process.stderr.write(`${err?.stack ?? err}\n`)
    return EXIT.ERROR
  } finally {
    wallet?.close()
  }
}

// Exit explicitly: a socket the relay keeps half-open must not keep the process alive.
process.exit(await main(process.argv.slice(2)))
