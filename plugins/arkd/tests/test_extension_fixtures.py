"""Ark extension outputs (arkrelay_arkd/extension.py) against arkd's own fixtures.

Copied unchanged from arkade-os/arkd at tag v0.9.15 (f444de6c336c024f5b03e646feb781eec9a24c00):

  pkg/ark-lib/extension/testdata/extension_fixtures.json
    -> data/arkd-v0.9.15/extension_fixtures.json

Run as ark-lib's extension_test.go runs them (decode, round trip, detection, refusals, the
asset packet and packets by type, extensions found in whole transactions), then one rule
at a time is broken to show a fixture notices.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from arkrelay_arkd import extension as ext_mod
from arkrelay_arkd.assetpacket import PACKET_TYPE, Packet
from arkrelay_arkd.extension import Extension, ExtensionError, ExtensionNotFound

DATA = Path(__file__).parent / "data" / "arkd-v0.9.15"
FIXTURES: dict[str, Any] = json.loads((DATA / "extension_fixtures.json").read_text())

Check = Callable[[], None]


def _decode(hex_: str) -> Extension:
    return Extension.decode(bytes.fromhex(hex_))


def _type(packet: object) -> int:
    return PACKET_TYPE if isinstance(packet, Packet) else packet.type  # type: ignore[attr-defined]


def _cases() -> dict[str, Check]:
    cases: dict[str, Check] = {}
    valid = FIXTURES["valid"]
    for v in valid["newExtensionFromBytes"]:

        def parsed(v: dict[str, Any] = v) -> None:
            ext = _decode(v["hex"])
            assert len(ext.packets) == v["expectedPacketCount"]
            assert [_type(p) for p in ext.packets][: len(v["expectedPacketTypes"])] == v[
                "expectedPacketTypes"
            ]

        cases[f"decode/{v['name']}"] = parsed
    for v in valid["roundtrip"]:

        def roundtrip(v: dict[str, Any] = v) -> None:
            script = _decode(v["hex"]).encode()
            assert script.hex() == v["hex"]
            assert ext_mod.is_extension(script)

        cases[f"roundtrip/{v['name']}"] = roundtrip
    for flag in ("true", "false"):
        for v in FIXTURES["isExtension"][flag]:

            def detect(v: dict[str, Any] = v, flag: str = flag) -> None:
                assert ext_mod.is_extension(bytes.fromhex(v["hex"])) is (flag == "true")

            cases[f"is-extension/{flag}/{v['name']}"] = detect
    for v in FIXTURES["invalid"]["newExtensionFromBytes"]:

        def refused(v: dict[str, Any] = v) -> None:
            with pytest.raises(ExtensionError) as caught:
                _decode(v["hex"])
            assert v["expectedError"] in str(caught.value)

        cases[f"decode-invalid/{v['name']}"] = refused
    for v in FIXTURES["invalid"]["serialize"]:

        def empty(v: dict[str, Any] = v) -> None:
            assert v["packetCount"] == 0
            with pytest.raises(ExtensionError, match=v["expectedError"]):
                Extension(()).encode()
            with pytest.raises(ExtensionError, match=v["expectedError"]):
                Extension.new([])

        cases[f"serialize-invalid/{v['name']}"] = empty
    for v in FIXTURES["getAssetPacket"]["found"]:

        def asset(v: dict[str, Any] = v) -> None:
            packet = _decode(v["hex"]).asset_packet()
            assert packet is not None
            assert packet.encode().hex() == v["expectedAssetPacketHex"]

        cases[f"asset-packet/{v['name']}"] = asset
    for v in FIXTURES["getAssetPacket"]["notFound"]:

        def no_asset(v: dict[str, Any] = v) -> None:
            ext = Extension(()) if not v["hex"] else _decode(v["hex"])
            assert ext.asset_packet() is None

        cases[f"asset-packet/none/{v['name']}"] = no_asset
    for v in FIXTURES["getPacketByType"]["found"]:

        def by_type(v: dict[str, Any] = v) -> None:
            packet = _decode(v["hex"]).packet(v["queryType"])
            assert packet is not None and _type(packet) == v["queryType"]
            assert packet.encode().hex() == v["expectedPacketHex"]

        cases[f"packet-by-type/{v['name']}"] = by_type
    for v in FIXTURES["getPacketByType"]["notFound"]:

        def absent(v: dict[str, Any] = v) -> None:
            assert _decode(v["hex"]).packet(v["queryType"]) is None

        cases[f"packet-by-type/none/{v['name']}"] = absent
    for v in FIXTURES["newExtensionFromTx"]["valid"]:

        def in_tx(v: dict[str, Any] = v) -> None:
            ext = Extension.from_tx(bytes.fromhex(v["hex"]))
            assert len(ext.packets) == v["expectedPacketCount"]

        cases[f"from-tx/{v['name']}"] = in_tx
    for v in FIXTURES["newExtensionFromTx"]["invalid"]:

        def not_in_tx(v: dict[str, Any] = v) -> None:
            expected = v["expectedError"]
            kind = ExtensionNotFound if expected == "ErrExtensionNotFound" else ExtensionError
            with pytest.raises(kind) as caught:
                Extension.from_tx(bytes.fromhex(v["hex"]))
            assert kind is ExtensionNotFound or expected in str(caught.value)

        cases[f"from-tx-invalid/{v['name']}"] = not_in_tx
    return cases


CASES = _cases()


@pytest.mark.parametrize("name", CASES)
def test_arkds_extension_fixture_case(name: str) -> None:
    CASES[name]()


def test_an_extension_with_one_type_twice_cannot_be_built() -> None:
    ext = _decode(FIXTURES["valid"]["roundtrip"][0]["hex"])
    with pytest.raises(ExtensionError, match="duplicate packet type 0x00"):
        Extension.new([*ext.packets, *ext.packets])


def _outcomes() -> list[bool]:
    results = []
    for check in CASES.values():
        try:
            check()
        except (AssertionError, ExtensionError, pytest.fail.Exception):
            results.append(False)
        else:
            results.append(True)
    return results


MUTATIONS = {
    # A different magic prefix.
    "magic": lambda mp: mp.setattr(ext_mod, "MAGIC", b"ARC"),
    # Long payloads pushed with a one-byte length only.
    "short pushes only": lambda mp: mp.setattr(
        ext_mod, "_push", lambda data: bytes([len(data) & 0xFF]) + data
    ),
    # Any OP_RETURN taken for an extension.
    "detection without magic": lambda mp: mp.setattr(
        ext_mod, "is_extension", lambda script: bool(script) and script[0] == 0x6A
    ),
}


def test_the_fixtures_pass_as_written() -> None:
    assert all(_outcomes())


@pytest.mark.parametrize("mutation", MUTATIONS, ids=str)
def test_changing_an_extension_rule_makes_a_fixture_fail(
    mutation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    MUTATIONS[mutation](monkeypatch)
    assert not all(_outcomes()), f"no fixture notices: {mutation}"
