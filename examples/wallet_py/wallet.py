"""A command-line wallet on ArkRelay's reference wallet (arkrelay_wallet).

Point it at a gateway's relay (``arkrelay run`` serves one on ws://127.0.0.1:7447) and the
gateway's hex pubkey from its banner:

    uv run --all-packages python examples/wallet_py/wallet.py \\
        --relay ws://127.0.0.1:7447 --gateway <hex> --secret <hex> balance

Commands: ``info``, ``balance``, ``address`` (this wallet's Ark address, which any Ark
wallet can pay), ``lift AMOUNT`` (prints the invoice; pay it with
``arkrelay sim ln pay``), ``transfer PUBKEY AMOUNT``, ``land BOLT11 AMOUNT``. Without
``--secret`` (or ARKRELAY_WALLET_SECRET) a new key is made and printed. Exit status 0
means the gateway confirmed; 1 a failure (31341) or a refused challenge; 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import trio
from arkrelay_wallet import ChallengeRefused, Wallet, WalletError, find_error

from arkrelay_core.nostr import bip340
from arkrelay_core.protocol import Kind

TIMEOUT = 120.0
FLAT_FEE = 10  # get_info's fees.transfer, the default


def show(label: str, value: Any) -> None:
    sys.stdout.write(f"{label}: {json.dumps(value, indent=2)}\n")


async def run(args: argparse.Namespace, secret: bytes) -> int:
    async with Wallet(args.relay, args.gateway, secret=secret, reconnect=True) as wallet:
        if args.command == "info":
            show("info", await wallet.call("get_info", timeout=TIMEOUT))
            return 0
        if args.command == "address":
            sys.stdout.write(f"{await wallet.ark_address(timeout=TIMEOUT)}\n")
            return 0
        if args.command == "balance":
            state = await wallet.call("sync_state", timeout=TIMEOUT)
            show("balances", state["balances"])
            return 0
        if args.command == "lift":
            reply = await wallet.call(
                "lift_lightning", asset_id="gBTC", amount=args.amount, timeout=TIMEOUT
            )
            sys.stdout.write(f"pay this invoice (e.g. arkrelay sim ln pay):\n{reply['invoice']}\n")
            d_tag = ["d", f"lift:{reply['payment_hash']}"]
            outcome = await wallet.next(
                Kind.CONFIRMATION, match=lambda r: d_tag in r.event.tags, timeout=3600
            )
            show("confirmed", outcome.content)
            return 0
        if args.command == "transfer":
            params = {"asset_id": "gBTC", "amount": args.amount, "recipient_pubkey": args.to}
            fee = FLAT_FEE
        else:
            params = {"asset_id": "gBTC", "amount": args.amount, "lightning_invoice": args.bolt11}
            fee = -(-args.amount // 1000)  # land pays 0.1 %, rounded up
        params["fee"] = {"asset_id": "gBTC", "amount": fee}
        kind = "ark:transfer" if args.command == "transfer" else "lightning:land"
        try:
            outcome = await wallet.run_ceremony(wallet.intent(kind, params), timeout=TIMEOUT)
        except ChallengeRefused as exc:
            sys.stderr.write(f"refused to sign: {exc}\n")
            return 1
        show("outcome", outcome.content)
        return 0 if outcome.event.kind == Kind.CONFIRMATION else 1


def main() -> int:
    parser = argparse.ArgumentParser(description="ArkRelay reference wallet (Python)")
    parser.add_argument("--relay", default="ws://127.0.0.1:7447")
    parser.add_argument("--gateway", required=True, help="the gateway's hex pubkey")
    parser.add_argument("--secret", default=os.environ.get("ARKRELAY_WALLET_SECRET"))
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("info")
    commands.add_parser("balance")
    commands.add_parser("address")
    commands.add_parser("lift").add_argument("amount", type=int)
    transfer = commands.add_parser("transfer")
    transfer.add_argument("to")
    transfer.add_argument("amount", type=int)
    land = commands.add_parser("land")
    land.add_argument("bolt11")
    land.add_argument("amount", type=int)
    args = parser.parse_args()
    if args.secret:
        secret = bytes.fromhex(args.secret)
    else:
        secret = bip340.generate_secret_key()
        sys.stderr.write(f"new wallet key (keep it: --secret {secret.hex()})\n")
    sys.stderr.write(f"wallet pubkey {bip340.xonly_public_key(secret).hex()}\n")
    try:
        return trio.run(run, args, secret)
    # The wallet's nursery may wrap what it raised in exception groups.
    except (WalletError, BaseExceptionGroup) as exc:
        failure = find_error(exc, (WalletError,))
        if failure is None:
            raise
        sys.stderr.write(f"error: {failure}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
