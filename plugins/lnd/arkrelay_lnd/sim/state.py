"""The simulator's state file: how `arkrelay sim ln ...` finds a running network.

A simulator that serves (standalone, or embedded in a dev gateway) writes
``<data dir>/sim-ln.json`` when its nodes are up and removes it when it stops. It names
each node's gRPC target, identity key and hex macaroon, and the PEM certificate every node
presents. The control surface is simply the nodes' own lnd APIs: the CLI drives the
``outside`` node like any lnd client would.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec

from arkrelay_core.config import HostPort, Secret

from ..settings import LndSettings

__all__ = [
    "CERT_FILE",
    "STATE_FILE",
    "NodeEntry",
    "SimState",
    "client_settings",
    "read_state",
    "remove_state",
    "write_state",
]

STATE_FILE = "sim-ln.json"
#: The nodes' certificate as a file, for clients configured with a ``tls_cert`` path.
CERT_FILE = "sim-ln.cert"


class NodeEntry(msgspec.Struct, frozen=True):
    target: str
    pubkey: str
    macaroon: str  # hex


class SimState(msgspec.Struct, frozen=True):
    network: str
    tls_cert: str  # PEM
    pid: int
    #: The daemon's endpoints by node name ("gateway", "outside", ...).
    nodes: dict[str, NodeEntry]


def write_state(data_dir: Path, state: SimState, *, file: str = STATE_FILE) -> Path:
    """Write ``file`` and, beside it, the certificate (``file`` with ``.cert``)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / file
    path.with_suffix(".cert").write_text(state.tls_cert, encoding="utf-8")
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(state)))
    os.replace(tmp, path)  # readers never see half a file
    return path


def read_state(data_dir: Path, *, file: str = STATE_FILE) -> SimState:
    """The running simulator's state (FileNotFoundError when none is running there)."""
    return msgspec.json.decode((data_dir / file).read_bytes(), type=SimState)


def remove_state(data_dir: Path, pid: int, *, file: str = STATE_FILE) -> None:
    path = data_dir / file
    try:
        if read_state(data_dir, file=file).pid == pid:
            path.unlink()
    except (FileNotFoundError, msgspec.DecodeError):
        return


def client_settings(data_dir: Path, node: str, **policy: Any) -> LndSettings:
    """How an lnd client reaches ``node`` of the network whose state is in ``data_dir``
    (FileNotFoundError when none runs there, KeyError for an unknown node); ``policy``
    sets CallPolicy fields such as ``call_timeout``."""
    entry = read_state(data_dir).nodes[node]
    return LndSettings(
        target=HostPort.parse(entry.target),
        tls_cert=data_dir / CERT_FILE,
        macaroon=Secret(entry.macaroon, origin=str(data_dir / STATE_FILE)),
        **policy,
    )
