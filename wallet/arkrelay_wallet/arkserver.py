"""The wallet's own view of its VTXOs, read from the Ark server rather than the gateway.

A wallet should not have to take the gateway's word for what it owns: the Ark server's
REST indexer (arkd's ``GET /v1/indexer/vtxos``, URL from get_info's ``ark.server_url``)
lists the VTXOs of the wallet's default script, and ``compare`` holds the gateway's
``sync_state`` against that list.
"""

# The wait takes its own `timeout` (as every wait of this wallet): running out must fail
# with a message naming what was awaited.
# ruff: noqa: ASYNC109

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import httpx
import msgspec
import trio
from arkrelay_arkd import address
from arkrelay_arkd.tapscript import default_vtxo_tree

from arkrelay_core.protocol import ArkServerInfo

from .link import DEFAULT_TIMEOUT, WalletError

__all__ = ["ServerVtxo", "ark_address", "compare", "default_script", "fetch_vtxos"]

#: arkd's largest GetVtxos page (internal/core/application/indexer.go).
PAGE_SIZE = 100


class _Outpoint(msgspec.Struct):
    txid: str
    vout: int


class _IndexerVtxo(msgspec.Struct, rename="camel"):
    outpoint: _Outpoint
    amount: str
    script: str
    expires_at: str | None
    is_spent: bool
    is_swept: bool
    is_preconfirmed: bool


class _Page(msgspec.Struct):
    current: int
    total: int


class _VtxosPage(msgspec.Struct):
    vtxos: list[_IndexerVtxo]
    page: _Page | None = None


class ServerVtxo(msgspec.Struct, frozen=True):
    """One VTXO as the Ark server lists it."""

    vtxo_id: str
    amount: int
    script: str
    expires_at: int
    spent: bool
    swept: bool
    preconfirmed: bool


def default_script(owner: str, terms: ArkServerInfo) -> str:
    """The hex pkScript of ``owner``'s default VTXO on the Ark server of ``terms``."""
    tree = default_vtxo_tree(
        bytes.fromhex(owner), bytes.fromhex(terms.signer_pubkey), terms.unilateral_exit_delay
    )
    return tree.pk_script.hex()


def ark_address(owner: str, terms: ArkServerInfo, network: str) -> str:
    """``owner``'s Ark address on the Ark server of ``terms``: bech32m of the server key and
    the output key of ``owner``'s default VTXO script, as arkd and @arkade-os/sdk encode it.
    Any Ark wallet pays it; the payment is ``owner``'s VTXO, gateway or not."""
    signer = bytes.fromhex(terms.signer_pubkey)
    tree = default_vtxo_tree(bytes.fromhex(owner), signer, terms.unilateral_exit_delay)
    return address.encode(signer, tree.output_key, address.hrp_for(network))


async def fetch_vtxos(
    server_url: str,
    scripts: Sequence[str],
    *,
    spendable_only: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[ServerVtxo]:
    """The VTXOs of ``scripts`` on the Ark server at ``server_url``, every page."""
    if not server_url:
        raise WalletError("the gateway names no Ark server URL (get_info ark.server_url)")
    found: list[ServerVtxo] = []
    params: list[tuple[str, Any]] = [("scripts", s) for s in scripts]
    if spendable_only:
        params.append(("spendableOnly", "true"))
    with trio.move_on_after(timeout) as scope:
        async with httpx.AsyncClient(base_url=server_url, timeout=timeout) as client:
            index = 1
            while True:
                page = await _get_page(
                    client, [*params, ("page.size", PAGE_SIZE), ("page.index", index)]
                )
                found.extend(_server_vtxo(v) for v in page.vtxos)
                if page.page is None or not page.vtxos or page.page.current >= page.page.total:
                    return found
                index = page.page.current + 1
    assert scope.cancelled_caught
    raise WalletError(f"the Ark server at {server_url} did not answer within {timeout:g}s")


async def _get_page(client: httpx.AsyncClient, params: list[tuple[str, Any]]) -> _VtxosPage:
    try:
        response = await client.get("/v1/indexer/vtxos", params=params)
    except httpx.HTTPError as exc:
        raise WalletError(f"the Ark server is unreachable: {exc}") from exc
    if response.status_code != 200:
        raise WalletError(
            f"the Ark server refused GetVtxos ({response.status_code}): {_message(response)}"
        )
    try:
        return msgspec.json.decode(response.content, type=_VtxosPage)
    except msgspec.DecodeError as exc:
        raise WalletError(f"the Ark server's GetVtxos answer is malformed: {exc}") from exc


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", response.text))
    except ValueError:
        return response.text[:200]


def _server_vtxo(v: _IndexerVtxo) -> ServerVtxo:
    return ServerVtxo(
        vtxo_id=f"{v.outpoint.txid}:{v.outpoint.vout}",
        amount=int(v.amount),
        script=v.script,
        expires_at=int(v.expires_at or 0),
        spent=v.is_spent,
        swept=v.is_swept,
        preconfirmed=v.is_preconfirmed,
    )


def compare(server: Iterable[ServerVtxo], sync_state: dict[str, Any]) -> list[str]:
    """Where the gateway's ``sync_state`` and the Ark server's spendable VTXOs disagree
    (empty when they agree): the same VTXOs, each of the same amount in sats (the
    gateway colours VTXOs with assets but reports their amounts as the Ark server does)."""
    theirs = {v.vtxo_id: v for v in server if not v.spent and not v.swept}
    ours = {e["vtxo_id"]: e for e in sync_state.get("vtxos", []) if e.get("status") == "spendable"}
    problems = [
        f"{vid}: the gateway lists it, the Ark server does not"
        for vid in ours.keys() - theirs.keys()
    ]
    problems += [
        f"{vid}: the Ark server lists it, the gateway does not"
        for vid in theirs.keys() - ours.keys()
    ]
    for vid in ours.keys() & theirs.keys():
        entry = ours[vid]
        if entry["amount"] != theirs[vid].amount:
            problems.append(
                f"{vid}: {entry['amount']} sats at the gateway, "
                f"{theirs[vid].amount} at the Ark server"
            )
    return sorted(problems)
