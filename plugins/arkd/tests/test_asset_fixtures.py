"""The asset packet codec (arkrelay_arkd/assetpacket.py) against arkd's own fixtures.

Copied unchanged from arkade-os/arkd at tag v0.9.15 (f444de6c336c024f5b03e646feb781eec9a24c00):

  pkg/ark-lib/asset/testdata/asset_id_fixtures.json -> data/arkd-v0.9.15/asset_id_fixtures.json
  pkg/ark-lib/asset/testdata/asset_ref_fixtures.json
    -> data/arkd-v0.9.15/asset_ref_fixtures.json
  pkg/ark-lib/asset/testdata/asset_input_fixtures.json
    -> data/arkd-v0.9.15/asset_input_fixtures.json
  pkg/ark-lib/asset/testdata/asset_output_fixtures.json
    -> data/arkd-v0.9.15/asset_output_fixtures.json
  pkg/ark-lib/asset/testdata/metadata_fixtures.json
    -> data/arkd-v0.9.15/asset_metadata_fixtures.json
  pkg/ark-lib/asset/testdata/asset_group_fixtures.json
    -> data/arkd-v0.9.15/asset_group_fixtures.json
  pkg/ark-lib/asset/testdata/packet_fixtures.json
    -> data/arkd-v0.9.15/asset_packet_fixtures.json

Each case is run as ark-lib's *_test.go runs it: build from fields and compare the bytes,
decode the bytes and compare the fields, or expect ark-lib's refusal text. Go's tests convert
the JSON's ints to uint16 before building, so indexes wrap here too. tx_validation_fixtures
(asset rules over whole transactions) is not run: see docs/simulators.md (pending #20).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from arkrelay_arkd import assetpacket as ap
from arkrelay_arkd.assetpacket import (
    AssetError,
    AssetGroup,
    AssetId,
    AssetInput,
    AssetOutput,
    AssetRef,
    Metadata,
    Packet,
)

DATA = Path(__file__).parent / "data" / "arkd-v0.9.15"


def _load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


IDS = _load("asset_id_fixtures.json")
REFS = _load("asset_ref_fixtures.json")
INPUTS = _load("asset_input_fixtures.json")
OUTPUTS = _load("asset_output_fixtures.json")
METADATA = _load("asset_metadata_fixtures.json")
GROUPS = _load("asset_group_fixtures.json")
PACKETS = _load("asset_packet_fixtures.json")


def _u16(n: int) -> int:
    return n % 65536


def _input(f: dict[str, Any]) -> AssetInput:
    if f.get("type") == "intent":
        return AssetInput.intent(f.get("txid", ""), _u16(f.get("vin", 0)), f.get("amount", 0))
    return AssetInput(_u16(f.get("vin", 0)), f.get("amount", 0))


def _group_parts(f: dict[str, Any]) -> dict[str, Any]:
    """The Go test's assetGroupValidationFixture.parse()."""
    asset_id = None
    if f.get("assetId") and (f["assetId"].get("txid") or f["assetId"].get("index")):
        asset_id = AssetId.new(f["assetId"]["txid"], f["assetId"].get("index", 0))
    control = None
    if f.get("controlAsset") is not None:
        ref = f["controlAsset"]
        if ref.get("assetId", {}).get("txid"):
            control = AssetRef(
                asset_id=AssetId.new(ref["assetId"]["txid"], ref["assetId"]["index"])
            )
        else:
            control = AssetRef(group_index=ref.get("groupIndex", 0))
    return {
        "asset_id": asset_id,
        "control_asset": control,
        "inputs": [_input(i) for i in f.get("inputs") or []],
        "outputs": [AssetOutput.new(o["vout"], o["amount"]) for o in f.get("outputs") or []],
        "metadata": [Metadata.new(m["key"], m["value"]) for m in f.get("metadata") or []],
    }


# One check per fixture case: returns normally when the codec agrees with the fixture.
Check = Callable[[], None]


def _refused(expected: str, build: Callable[[], object]) -> Check:
    def check() -> None:
        try:
            build()
        except AssetError as exc:
            assert expected in str(exc), f"{exc!s} does not contain {expected!r}"
            return
        raise AssertionError(f"accepted; ark-lib refuses with {expected!r}")

    return check


def _asset_id_cases() -> dict[str, Check]:
    cases: dict[str, Check] = {}
    for v in IDS["valid"]:

        def check(v: dict[str, Any] = v) -> None:
            asset_id = AssetId.new(v["txid"], _u16(v["index"]))
            assert str(asset_id) == v["serializedHex"]
            back = AssetId.from_hex(v["serializedHex"])
            assert (back.txid, back.index) == (v["txid"], _u16(v["index"]))

        cases[f"id/{v['name']}"] = check
    for v in IDS["invalid"]["newAssetId"]:
        cases[f"id/new/{v['name']}"] = _refused(
            v["expectedError"], lambda v=v: AssetId.new(v["txid"], _u16(v["index"]))
        )
    for v in IDS["invalid"]["newAssetIdFromString"]:
        cases[f"id/hex/{v['name']}"] = _refused(
            v["expectedError"], lambda v=v: AssetId.from_hex(v["serializedHex"])
        )
    return cases


def _ref_cases() -> dict[str, Check]:
    cases: dict[str, Check] = {}
    for v in REFS["valid"]["newAssetRefFromId"]:

        def by_id(v: dict[str, Any] = v) -> None:
            ref = AssetRef(asset_id=AssetId.new(v["txid"], v["index"]))
            assert str(ref) == v["serializedHex"]
            assert AssetRef.from_hex(v["serializedHex"]) == ref

        cases[f"ref/id/{v['name']}"] = by_id
    for v in REFS["valid"]["newAssetRefFromGroupIndex"]:

        def by_group(v: dict[str, Any] = v) -> None:
            ref = AssetRef(group_index=_u16(v["index"]))
            assert str(ref) == v["serializedHex"]

        cases[f"ref/group/{v['name']}"] = by_group
    for v in REFS["invalid"]["newAssetRefFromString"]:
        cases[f"ref/hex/{v['name']}"] = _refused(
            v["expectedError"], lambda v=v: AssetRef.from_hex(v["serializedHex"])
        )
    return cases


def _input_cases() -> dict[str, Check]:
    cases: dict[str, Check] = {}
    for v in INPUTS["valid"]["newInput"]:

        def one(v: dict[str, Any] = v) -> None:
            item = _input(v)
            assert str(item) == v["serializedHex"]
            back = AssetInput.from_hex(v["serializedHex"])
            assert (back.vin, back.amount) == (v["vin"], v["amount"])

        cases[f"input/{v['name']}"] = one
    for v in INPUTS["valid"]["newInputs"]:

        def many(v: dict[str, Any] = v) -> None:
            items = ap.new_inputs([_input(i) for i in v["inputs"]])
            assert ap.encode_inputs(items).hex() == v["serializedHex"]
            assert ap.decode_inputs(v["serializedHex"]) == items

        cases[f"inputs/{v['name']}"] = many
    invalid = INPUTS["invalid"]
    for v in invalid["newInput"]:
        cases[f"input/new/{v['name']}"] = _refused(
            v["expectedError"], lambda v=v: AssetInput.intent(v["txid"], _u16(v["vin"]), 0)
        )
    for v in invalid["newInputFromString"]:
        cases[f"input/hex/{v['name']}"] = _refused(
            v["expectedError"], lambda v=v: AssetInput.from_hex(v["serializedHex"])
        )
    for v in invalid["newInputs"]:
        # The Go test builds these as struct literals, unchecked one by one.
        literal = [AssetInput(i["vin"], i["amount"], i.get("txid", "")) for i in v["inputs"]]
        cases[f"inputs/new/{v['name']}"] = _refused(
            v["expectedError"], lambda items=literal: ap.new_inputs(items)
        )
    for v in invalid["newInputsFromString"]:
        cases[f"inputs/hex/{v['name']}"] = _refused(
            v["expectedError"], lambda v=v: ap.decode_inputs(v["serializedHex"])
        )
    return cases


def _output_cases() -> dict[str, Check]:
    cases: dict[str, Check] = {}
    for v in OUTPUTS["valid"]["newOutput"]:

        def one(v: dict[str, Any] = v) -> None:
            item = AssetOutput.new(v["vout"], v["amount"])
            assert str(item) == v["serializedHex"]
            assert AssetOutput.from_hex(v["serializedHex"]) == item

        cases[f"output/{v['name']}"] = one
    for v in OUTPUTS["valid"]["newOutputs"]:

        def many(v: dict[str, Any] = v) -> None:
            items = ap.new_outputs([AssetOutput.new(o["vout"], o["amount"]) for o in v["outputs"]])
            assert ap.encode_outputs(items).hex() == v["serializedHex"]
            assert ap.decode_outputs(v["serializedHex"]) == items

        cases[f"outputs/{v['name']}"] = many
    invalid = OUTPUTS["invalid"]
    for v in invalid["newOutput"]:
        cases[f"output/new/{v['name']}"] = _refused(
            v["expectedError"], lambda v=v: AssetOutput.new(v["vout"], v["amount"])
        )
    for v in invalid["newOutputFromString"]:
        cases[f"output/hex/{v['name']}"] = _refused(
            v["expectedError"], lambda v=v: AssetOutput.from_hex(v["serializedHex"])
        )
    for v in invalid["newOutputs"]:
        cases[f"outputs/new/{v['name']}"] = _refused(
            v["expectedError"],
            lambda v=v: ap.new_outputs(
                [AssetOutput.new(o["vout"], o["amount"]) for o in v["outputs"]]
            ),
        )
    for v in invalid["newOutputsFromString"]:
        cases[f"outputs/hex/{v['name']}"] = _refused(
            v["expectedError"], lambda v=v: ap.decode_outputs(v["serializedHex"])
        )
    return cases


def _metadata_cases() -> dict[str, Check]:
    cases: dict[str, Check] = {}
    for v in METADATA["valid"]["newMetadata"]:

        def one(v: dict[str, Any] = v) -> None:
            item = Metadata.new(v["key"], v["value"])
            assert str(item) == v["serializedHex"]
            back = Metadata.from_hex(v["serializedHex"])
            assert (back.key.decode(), back.value.decode()) == (v["key"], v["value"])

        cases[f"metadata/{v['name']}"] = one
    for v in METADATA["valid"]["newMetadataList"]:

        def many(v: dict[str, Any] = v) -> None:
            items = [Metadata.new(m["key"], m["value"]) for m in v["metadata"]]
            assert ap.encode_metadata_list(items).hex() == v["serializedHex"]
            assert sorted(ap.decode_metadata_list(v["serializedHex"]), key=str) == sorted(
                items, key=str
            )

        cases[f"metadata-list/{v['name']}"] = many
    for v in METADATA["valid"]["hash"]:

        def root(v: dict[str, Any] = v) -> None:
            items = [Metadata.new(m["key"], m["value"]) for m in v["metadata"]]
            assert (ap.metadata_hash(items) or b"").hex() == v["expectedHash"]

        cases[f"metadata-hash/{v['name']}"] = root
    invalid = METADATA["invalid"]
    for v in invalid["newMetadata"]:
        cases[f"metadata/new/{v['name']}"] = _refused(
            v["expectedError"], lambda v=v: Metadata.new(v["key"], v["value"])
        )
    for v in invalid["newMetadataFromString"]:
        cases[f"metadata/hex/{v['name']}"] = _refused(
            v["expectedError"], lambda v=v: Metadata.from_hex(v["serializedHex"])
        )
    for v in invalid["newMetadataListFromString"]:
        cases[f"metadata-list/hex/{v['name']}"] = _refused(
            v["expectedError"], lambda v=v: ap.decode_metadata_list(v["serializedHex"])
        )
    return cases


def _group_cases() -> dict[str, Check]:
    cases: dict[str, Check] = {}
    for v in GROUPS["valid"]:

        def one(v: dict[str, Any] = v) -> None:
            parts = _group_parts(v)
            group = AssetGroup.new(**parts)
            assert str(group) == v["serializedHex"]
            back = AssetGroup.from_hex(v["serializedHex"])
            assert back == group

        cases[f"group/{v['name']}"] = one
    for v in GROUPS["invalid"]["newAssetGroup"]:
        cases[f"group/new/{v['name']}"] = _refused(
            v["expectedError"], lambda v=v: AssetGroup.new(**_group_parts(v))
        )
    for v in GROUPS["invalid"]["newAssetGroupFromString"]:
        cases[f"group/hex/{v['name']}"] = _refused(
            v["expectedError"], lambda v=v: AssetGroup.from_hex(v["serializedHex"])
        )
    return cases


def _packet_cases() -> dict[str, Check]:
    cases: dict[str, Check] = {}
    valid = PACKETS["valid"]
    for v in valid["newPacket"]:

        def built(v: dict[str, Any] = v) -> None:
            packet = Packet.new([AssetGroup.new(**_group_parts(g)) for g in v["assets"]])
            assert packet.encode().hex() == v["expected"]
            assert Packet.from_hex(v["expected"]) == packet

        cases[f"packet/{v['name']}"] = built
    for v in valid["newPacketFromString"]:

        def parsed(v: dict[str, Any] = v) -> None:
            assert str(Packet.from_hex(v["script"])) == v["script"]

        cases[f"packet/hex/{v['name']}"] = parsed
    for v in valid["leafTxPacket"]:

        def leaf(v: dict[str, Any] = v) -> None:
            packet = Packet.from_hex(v["script"])
            assert str(packet.leaf_tx_packet(v["intentTxid"])) == v["expectedLeafTxPacket"]

        cases[f"packet/leaf/{v['name']}"] = leaf
    for v in PACKETS["invalid"]["newPacket"]:
        cases[f"packet/new/{v['name']}"] = _refused(
            v["expectedError"],
            lambda v=v: Packet.new([AssetGroup.new(**_group_parts(g)) for g in v["assets"]]),
        )
    for v in PACKETS["invalid"]["newPacketFromString"]:
        cases[f"packet/hex-invalid/{v['name']}"] = _refused(
            v["expectedError"], lambda v=v: Packet.from_hex(v["script"])
        )
    return cases


CASES: dict[str, Check] = {
    **_asset_id_cases(),
    **_ref_cases(),
    **_input_cases(),
    **_output_cases(),
    **_metadata_cases(),
    **_group_cases(),
    **_packet_cases(),
}


@pytest.mark.parametrize("name", CASES)
def test_arkds_asset_fixture_case(name: str) -> None:
    CASES[name]()


def test_every_fixture_case_is_collected() -> None:
    def count(node: Any) -> int:
        if isinstance(node, list):
            return len(node)
        if isinstance(node, dict):
            return sum(count(v) for v in node.values())
        return 0

    files = [IDS, REFS, INPUTS, OUTPUTS, METADATA, GROUPS, PACKETS]
    assert len(CASES) == sum(count(f["valid"]) + count(f["invalid"]) for f in files)


# ------------------------------------------------------------------ the fixtures bite


def _outcomes() -> list[bool]:
    results = []
    for check in CASES.values():
        try:
            check()
        except (AssertionError, AssetError):
            results.append(False)
        else:
            results.append(True)
    return results


MUTATIONS = {
    # Varints as one byte each: large amounts no longer round-trip.
    "amounts as single bytes": lambda mp: mp.setattr(ap, "_uvarint", lambda n: bytes([n & 0xFF])),
    # Txids written in internal (reversed) order, as a careless port of chainhash would.
    "txids reversed": lambda mp: mp.setattr(
        AssetId, "encode", lambda self: bytes.fromhex(self.txid)[::-1] + ap._u16(self.index)
    ),
    # The presence bit for metadata forgotten.
    "metadata bit": lambda mp: mp.setattr(ap, "_HAS_METADATA", 0x08),
    # The branch hash without sorting the pair.
    "unsorted metadata branches": lambda mp: mp.setattr(
        ap,
        "_tagged",
        lambda tag, *parts, real=ap._tagged: (
            real(tag, *reversed(parts)) if tag == b"ArkadeAssetBranch" else real(tag, *parts)
        ),
    ),
}


def test_the_fixtures_pass_as_written() -> None:
    assert all(_outcomes())


@pytest.mark.parametrize("mutation", MUTATIONS, ids=str)
def test_changing_an_encoding_rule_makes_a_fixture_fail(
    mutation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    MUTATIONS[mutation](monkeypatch)
    assert not all(_outcomes()), f"no fixture notices: {mutation}"
