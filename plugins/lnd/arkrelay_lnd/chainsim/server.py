"""The chain's HTTP server: Esplora's REST subset that wallets use (``@arkade-os/sdk``'s
``EsploraProvider``, arkd's explorer client) plus two admin calls, ``POST /sim/faucet``
and ``POST /sim/mine``. quart-trio under hypercorn's trio worker, as the gateway's own
HTTP API. No websocket: ``GET /v1/ws`` is not served, and the SDK falls back to polling.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

import hypercorn.trio
import msgspec
import trio
from hypercorn.config import Config as HypercornConfig
from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from . import esplora
from .errors import Refusal
from .ledger import Ledger
from .outputs import script_of

__all__ = ["MAX_BODY", "create_app", "serve"]

log = logging.getLogger(__name__)

#: Largest request body: a package of 25 transactions at the standard weight limit, hex.
MAX_BODY = 4 * 1024 * 1024
#: Most blocks one ``/sim/mine`` call mines.
MAX_MINE = 10_000
#: Esplora's confirmation targets for /fee-estimates.
FEE_TARGETS = (*range(1, 26), 144, 504, 1008)
#: Confirmed transactions per ``/address/:address/txs`` page (Esplora's).
CHAIN_TXS_PER_PAGE = 25


class FaucetRequest(msgspec.Struct, forbid_unknown_fields=True):
    address: str
    amount: int


class MineRequest(msgspec.Struct, forbid_unknown_fields=True):
    blocks: int = 1


class _NotFound(Exception):
    pass


class _BadRequest(Exception):
    pass


def _text(body: str, status: int = 200) -> Response:
    return Response(body, status=status, content_type="text/plain")


def _json(value: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(value), status=status, content_type="application/json")


def create_app(ledger: Ledger) -> QuartTrio:
    app = QuartTrio("arkrelay-chain-sim")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.url_map.strict_slashes = False

    def entry(txid: str) -> Any:
        found = ledger.txs.get(txid.lower())
        if found is None:
            raise _NotFound("Transaction not found")
        return found

    def script(address: str) -> bytes:
        found = script_of(address)
        if found is None:
            raise _BadRequest(f"Invalid Bitcoin address: {address}")
        return found

    @app.errorhandler(_NotFound)
    async def not_found(exc: _NotFound) -> Response:
        return _text(str(exc), 404)

    @app.errorhandler(_BadRequest)
    async def bad_request(exc: _BadRequest) -> Response:
        return _text(str(exc), 400)

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        # Plain text like Esplora's, not werkzeug's HTML page.
        return _text(exc.name, exc.code or 500)

    @app.errorhandler(Refusal)
    async def refused(exc: Refusal) -> Response:
        log.info("refused %s: %s", request.path, exc.reason)
        package = request.path.startswith("/txs/package")
        return _text(exc.esplora_text("submitpackage" if package else "sendrawtransaction"), 400)

    # ----------------------------------------------------------------- blocks

    @app.get("/blocks/tip/height")
    async def tip_height() -> Response:
        return _text(str(ledger.height))

    @app.get("/blocks/tip/hash")
    async def tip_hash() -> Response:
        return _text(ledger.tip.hash)

    @app.get("/blocks")
    @app.get("/blocks/<int:start>")
    async def blocks(start: int | None = None) -> Response:
        top = ledger.height if start is None else min(start, ledger.height)
        chosen = [ledger.blocks[h] for h in range(top, max(top - 10, -1), -1)]
        return _json([esplora.block_json(ledger, b) for b in chosen])

    @app.get("/block/<block_hash>")
    async def block(block_hash: str) -> Response:
        height = ledger.by_hash.get(block_hash.lower())
        if height is None:
            raise _NotFound("Block not found")
        return _json(esplora.block_json(ledger, ledger.blocks[height]))

    @app.get("/block-height/<int:height>")
    async def block_height(height: int) -> Response:
        if height > ledger.height:
            raise _NotFound("Block not found")
        return _text(ledger.blocks[height].hash)

    # ----------------------------------------------------------------- addresses

    @app.get("/address/<address>")
    async def address(address: str) -> Response:
        return _json(esplora.address_json(ledger, address, script(address)))

    @app.get("/address/<address>/utxo")
    async def address_utxo(address: str) -> Response:
        found = ledger.utxos(script(address))
        return _json([esplora.utxo_json(ledger, e, i) for e, i in found])

    @app.get("/address/<address>/txs")
    async def address_txs(address: str) -> Response:
        history = ledger.history(script(address))
        pool = [e for e in history if not e.height]
        chain = [e for e in history if e.height][:CHAIN_TXS_PER_PAGE]
        return _json([esplora.tx_json(ledger, e) for e in pool + chain])

    # ----------------------------------------------------------------- transactions

    @app.get("/tx/<txid>")
    async def tx(txid: str) -> Response:
        return _json(esplora.tx_json(ledger, entry(txid)))

    @app.get("/tx/<txid>/hex")
    async def tx_hex(txid: str) -> Response:
        return _text(entry(txid).raw.hex())

    @app.get("/tx/<txid>/raw")
    async def tx_raw(txid: str) -> Response:
        return Response(entry(txid).raw, content_type="application/octet-stream")

    @app.get("/tx/<txid>/status")
    async def tx_status(txid: str) -> Response:
        return _json(esplora.status_json(ledger, entry(txid)))

    @app.get("/tx/<txid>/outspends")
    async def tx_outspends(txid: str) -> Response:
        found = entry(txid)
        outs = range(len(found.tx.vout))
        return _json([esplora.outspend_json(ledger, found.txid, i) for i in outs])

    @app.get("/tx/<txid>/outspend/<int:vout>")
    async def tx_outspend(txid: str, vout: int) -> Response:
        found = entry(txid)
        if vout >= len(found.tx.vout):
            raise _BadRequest("Invalid output index")
        return _json(esplora.outspend_json(ledger, found.txid, vout))

    @app.get("/mempool/txids")
    async def mempool_txids() -> Response:
        return _json(list(ledger.mempool))

    @app.get("/fee-estimates")
    async def fee_estimates() -> Response:
        # Every block takes the whole mempool: any target is met at the floor.
        return _json({str(t): ledger.fee_rate() for t in FEE_TARGETS})

    @app.post("/tx")
    async def broadcast() -> Response:
        body = (await request.get_data(as_text=True)).strip()
        return _text(ledger.submit(_hex(body)))

    @app.post("/txs/package")
    async def broadcast_package() -> Response:
        try:
            raws = msgspec.json.decode(await request.get_data(), type=list[str])
        except msgspec.ValidationError as exc:
            raise _BadRequest(f"invalid package: {exc}") from exc
        except msgspec.DecodeError as exc:
            raise _BadRequest(f"invalid JSON: {exc}") from exc
        entries = ledger.submit_package([_hex(r) for r in raws])
        results = {}
        for found in entries:
            rate = found.fee / found.vsize * 1000 / 1e8
            results[found.wtxid] = {
                "txid": found.txid,
                "vsize": found.vsize,
                "fees": {
                    "base": found.fee / 1e8,
                    "effective-feerate": round(rate, 8),
                    "effective-includes": [found.wtxid],
                },
            }
        return _json({"package_msg": "success", "tx-results": results, "replaced-transactions": []})

    # ----------------------------------------------------------------- admin

    @app.post("/sim/faucet")
    async def faucet() -> Response:
        asked = _decode(await request.get_data(), FaucetRequest)
        txid, vout = ledger.faucet(script(asked.address), asked.amount)
        log.info("faucet: %d sats to %s in %s:%d", asked.amount, asked.address, txid, vout)
        return _json({"txid": txid, "vout": vout})

    @app.post("/sim/mine")
    async def mine() -> Response:
        data = await request.get_data()
        asked = _decode(data, MineRequest) if data.strip() else MineRequest()
        if not 1 <= asked.blocks <= MAX_MINE:
            raise _BadRequest(f"blocks must be 1 to {MAX_MINE}")
        mined = ledger.mine(asked.blocks)
        log.info("mined %d block(s), tip %d", len(mined), ledger.height)
        return _json({"height": ledger.height, "hashes": [b.hash for b in mined]})

    return app


def _hex(text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise _BadRequest("Invalid hex string") from None


def _decode(data: bytes, kind: type[Any]) -> Any:
    try:
        return msgspec.json.decode(data, type=kind)
    except msgspec.DecodeError as exc:  # ValidationError included
        raise _BadRequest(json.dumps({"error": str(exc)})) from exc


async def serve(
    ledger: Ledger,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``ledger`` until cancelled; ``task_status.started(base_url)``."""
    config = HypercornConfig()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("arkrelay_lnd.chainsim.http")
    config.graceful_timeout = 2.0
    config.h11_max_incomplete_size = 16 * 1024
    app = create_app(ledger)
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(functools.partial(hypercorn.trio.serve, app, config))
        url = binds[0]
        log.info("chain simulator on %s", url)
        task_status.started(url)
