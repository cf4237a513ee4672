"""The embedded defaults: what `arkrelay run` composes when it is given no config.

A newcomer's first run: regtest, SQLite and a dev key under ``./.arkrelay/``, the gateway's
own relay on ``ws://127.0.0.1:7447``, and the arkd, lnd and tapd plugins on their
in-process simulators (each plugin runs its simulator when no ``target`` is set). Only the
sections whose plugins are installed are composed; the others are reported as missing, so
a core-only install still starts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["ENDPOINT_LISTEN", "ENDPOINT_URL", "HTTP_LISTEN", "embedded_config_text"]

ENDPOINT_URL = "ws://127.0.0.1:7447"

ENDPOINT_LISTEN = "127.0.0.1:7447"
HTTP_LISTEN = "127.0.0.1:8080"

#: (role, plugin name, TOML section), in the order the banner lists them.
_SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("transport", "endpoint", '[transport.endpoint]\nlisten = "{listen}"\n'),
    # The gateway's default fees (10 sats) are outputs below dust, which arkd's default
    # minimum VTXO amount (the dust limit) refuses: the simulator is set as arkd's regtest
    # setups are (ARKD_VTXO_MIN_AMOUNT=1).
    (
        "ark",
        "arkd",
        '[backend.ark]\nplugin = "arkd"\n\n[backend.ark.simulator]\nvtxo_min_amount = 1\n',
    ),
    ("lightning", "lnd", '[backend.lightning]\nplugin = "lnd"\n'),
    ("assets", "tapd", '[backend.assets]\nplugin = "tapd"\n'),
)


def embedded_config_text(
    installed: Callable[[str, str], bool],
    *,
    listen: str = ENDPOINT_LISTEN,
    data_dir: str | None = None,
    relays: Sequence[str] = (),
    http_listen: str = HTTP_LISTEN,
) -> tuple[str, list[str]]:
    """The defaults as TOML, and the ``role/plugin`` names left out because
    ``installed(role, name)`` said they are not installed. ``arkrelay demo`` moves the
    endpoint (``listen``) and the data directory, or puts a pool of external ``relays``
    in the endpoint's place."""
    gateway = '[gateway]\nnetwork = "regtest"\n'
    if data_dir is not None:
        gateway += f"data_dir = {_toml_string(data_dir)}\n"
    parts = [gateway, f'[http]\nlisten = "{http_listen}"\n']
    missing = []
    for role, name, section in _SECTIONS:
        if relays and name == "endpoint":
            role, name = "transport", "relays"
            section = f"[transport.relays]\nrelays = [{', '.join(map(_toml_string, relays))}]\n"
        if installed(role, name):
            parts.append(section.replace("{listen}", listen))
        else:
            missing.append(f"{role}/{name}")
    return "\n".join(parts), missing


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
