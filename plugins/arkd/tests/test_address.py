"""Ark addresses against arkd's own vectors.

Vectors: arkade-os/arkd tag v0.9.15, ``pkg/ark-lib/encoding_test.go``
(``TestAddressEncoding``), copied as data. arkd gives the keys in compressed form; an
address carries them x-only.
"""

from __future__ import annotations

import pytest

from arkrelay_arkd import address
from arkrelay_arkd.tapscript import default_vtxo_tree

VALID = [
    {
        "addr": "tark1qqellv77udfmr20tun8dvju5vgudpf9vxe8jwhthrkn26fz96pawqfd"
        "y8nk05rsmrf8h94j26905e7n6sng8y059z8ykn2j5xcuw4xt846qj6x",
        "version": 0,
        "prefix": "tark",
        "user_key": "0225a43cecfa0e1b1a4f72d64ad15f4cfa7a84d0723e8511c969aa543638ea9967",
        "signer_key": "0233ffb3dee353b1a9ebe4ced64b946238d0a4ac364f275d771da6ad2445d07ae0",
    }
]
INVALID = [
    {
        "addr": "wrongprefix1qt9tfh7c09hlsstzq5y9tzuwyaesrwr8gpy8cn29cxv0flp64958s0n0yd0",
        "error": "unknown prefix",
    },
    {
        "addr": "tark1x0lm8hhr2wc6n6lyemtyh9rz8rg2ftpkfun46aca56kjg3ws0tsztfp"
        "uanaquxc6faedvjk3tax0575y6perapg3e95654pk8r4fjecs5fyd2",
        "error": "invalid address bytes length",
    },
]


@pytest.mark.parametrize("vector", VALID)
def test_arkds_valid_address_decodes_and_encodes_back(vector) -> None:
    decoded = address.decode(vector["addr"])
    assert decoded.version == vector["version"]
    assert decoded.hrp == vector["prefix"]
    assert decoded.vtxo_key.hex() == vector["user_key"][2:]
    assert decoded.server_key.hex() == vector["signer_key"][2:]
    assert decoded.encode() == vector["addr"]
    assert address.decode(vector["addr"].upper()) == decoded


@pytest.mark.parametrize("vector", INVALID, ids=[v["error"] for v in INVALID])
def test_arkds_invalid_addresses_fail_for_arkds_reason(vector) -> None:
    with pytest.raises(address.ArkAddressError, match=vector["error"]):
        address.decode(vector["addr"])


def test_a_changed_character_breaks_the_checksum() -> None:
    good = VALID[0]["addr"]
    bad = good[:-1] + ("q" if good[-1] != "q" else "p")
    with pytest.raises(address.ArkAddressError, match="checksum"):
        address.decode(bad)


def test_an_owners_address_pays_its_default_vtxo_script() -> None:
    signer = bytes.fromhex("22" * 32)
    tree = default_vtxo_tree(
        bytes.fromhex("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"),
        bytes.fromhex("c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5"),
        512,
    )
    text = address.encode(signer, tree.output_key, address.hrp_for("regtest"))
    assert text.startswith("tark1")
    decoded = address.decode(text)
    assert decoded.pk_script == tree.pk_script
    assert (decoded.server_key, decoded.vtxo_key) == (signer, tree.output_key)
    assert address.hrp_for("bitcoin") == "ark" and address.hrp_for("signet") == "tark"
    with pytest.raises(address.ArkAddressError):
        address.encode(signer[:31], tree.output_key, "tark")
