"""``python -m arkrelay_arkd.sim --port 7070``: run the arkd simulator until Ctrl-C."""

from __future__ import annotations

import argparse
import functools
import logging

import trio

from .ledger import Ledger
from .server import ArkdSimulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m arkrelay_arkd.sim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7070, help="0 picks a free port")
    parser.add_argument("--network", default="regtest")
    parser.add_argument("--exit-delay", type=int, default=512, help="unilateral exit delay")
    parser.add_argument(
        "--board",
        action="append",
        default=[],
        metavar="PUBKEY:SATS",
        help="fund an x-only key at start (repeatable)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    sim = ArkdSimulator(
        Ledger(network=args.network, unilateral_exit_delay=args.exit_delay), host=args.host
    )
    for item in args.board:
        owner, _, amount = item.partition(":")
        vtxo = sim.board(owner, int(amount))
        logging.info("boarded %s sats for %s: %s", amount, owner, f"{vtxo.txid}:{vtxo.vout}")

    try:
        trio.run(_serve, sim, args.port)
    except KeyboardInterrupt:
        logging.info("stopped")


async def _serve(sim: ArkdSimulator, port: int) -> None:
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(functools.partial(sim.serve, port=port))
        logging.info("arkd simulator ready on %s:%d (ArkService, IndexerService)", sim.host, bound)


if __name__ == "__main__":
    main()
