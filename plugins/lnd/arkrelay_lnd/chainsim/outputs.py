"""Output scripts: their Esplora type, their regtest address, the dust threshold bitcoind
applies to them, and whether bitcoind relays them (policy/policy.cpp ``IsStandard``,
``GetDustThreshold``; script/solver.cpp for the types)."""

from __future__ import annotations

from embit import bech32

__all__ = [
    "HRP",
    "P2A_SCRIPT",
    "address_of",
    "asm",
    "dust_threshold",
    "esplora_type",
    "script_of",
]

#: Regtest's bech32 human-readable part (chainparams.cpp).
HRP = "bcrt"
#: Pay-to-anchor: OP_1 <0x4e73> (bitcoind 28, script/solver.cpp ``IsPayToAnchor``).
P2A_SCRIPT = bytes.fromhex("51024e73")
#: -dustrelayfee's default, sat/kvB (policy/policy.h DUST_RELAY_TX_FEE).
DUST_RELAY_FEE = 3000
#: bitcoind -datacarriersize's default before 30.0 (policy/policy.h MAX_OP_RETURN_RELAY).
MAX_OP_RETURN = 83

_OP_RETURN = 0x6A


def witness_program(script: bytes) -> tuple[int, bytes] | None:
    """(version, program) of a segwit output script (BIP 141), else None."""
    if not 4 <= len(script) <= 42:
        return None
    op = script[0]
    if op != 0 and not 0x51 <= op <= 0x60:
        return None
    if script[1] + 2 != len(script):
        return None
    return (0 if op == 0 else op - 0x50), script[2:]


def esplora_type(script: bytes) -> str:
    """The ``scriptpubkey_type`` Esplora gives the script."""
    if len(script) == 25 and script[:3] == b"\x76\xa9\x14" and script[-2:] == b"\x88\xac":
        return "p2pkh"
    if len(script) == 23 and script[:2] == b"\xa9\x14" and script[-1] == 0x87:
        return "p2sh"
    if script == P2A_SCRIPT:
        return "anchor"
    if script and script[0] == _OP_RETURN:
        return "op_return"
    if not script:
        return "empty"
    program = witness_program(script)
    if program is not None:
        version, data = program
        if version == 0 and len(data) == 20:
            return "v0_p2wpkh"
        if version == 0 and len(data) == 32:
            return "v0_p2wsh"
        if version == 1 and len(data) == 32:
            return "v1_p2tr"
    return "unknown"


def address_of(script: bytes) -> str | None:
    """The regtest address of a segwit output (bech32 for v0, bech32m after); None for
    scripts without one (OP_RETURN, bare scripts) and for legacy scripts, which this
    chain does not pay."""
    program = witness_program(script)
    if program is None:
        return None
    return bech32.encode(HRP, program[0], program[1])


def script_of(address: str) -> bytes | None:
    """The output script of a regtest segwit address; None if it is not one."""
    version, program = bech32.decode(HRP, address.lower())
    if version is None or program is None:
        return None
    op = 0 if version == 0 else 0x50 + version
    return bytes([op, len(program), *program])


def standard(script: bytes) -> bool:
    """Whether bitcoind relays an output paying ``script`` (``IsStandard``: the known
    templates, OP_RETURN up to the data-carrier size, any witness version 1-16)."""
    kind = esplora_type(script)
    if kind in ("p2pkh", "p2sh", "v0_p2wpkh", "v0_p2wsh", "v1_p2tr", "anchor"):
        return True
    if kind == "op_return":
        return len(script) <= MAX_OP_RETURN and _push_only(script[1:])
    program = witness_program(script)
    # Future witness versions are standard to pay (WITNESS_UNKNOWN); v0 of other sizes not.
    return program is not None and program[0] != 0


def dust_threshold(script: bytes) -> int:
    """The smallest value bitcoind relays for an output paying ``script``: the fee, at
    -dustrelayfee, of the output plus the input that would spend it (witness inputs
    counted at a quarter). OP_RETURN outputs are never dust."""
    if script and script[0] == _OP_RETURN:
        return 0
    size = 8 + _compact_size(len(script)) + len(script)
    if witness_program(script) is not None:
        size += 32 + 4 + 1 + 107 // 4 + 4
    else:
        size += 32 + 4 + 1 + 107 + 4
    return size * DUST_RELAY_FEE // 1000


def _compact_size(n: int) -> int:
    return 1 if n < 0xFD else 3 if n <= 0xFFFF else 5


def _push_only(script: bytes) -> bool:
    try:
        return all(op <= 0x60 for op, _ in iter_ops(script))
    except ValueError:
        return False


def iter_ops(script: bytes) -> list[tuple[int, bytes | None]]:
    """(opcode, pushed data or None) for each operation; ValueError on a truncated push."""
    ops: list[tuple[int, bytes | None]] = []
    i = 0
    while i < len(script):
        op = script[i]
        i += 1
        if op <= 0x4E:
            if op < 0x4C:
                size = op
            else:
                width = {0x4C: 1, 0x4D: 2, 0x4E: 4}[op]
                if i + width > len(script):
                    raise ValueError("truncated push")
                size = int.from_bytes(script[i : i + width], "little")
                i += width
            if i + size > len(script):
                raise ValueError("truncated push")
            ops.append((op, script[i : i + size]))
            i += size
        else:
            ops.append((op, None))
    return ops


_NAMES = {
    0x00: "OP_0",
    0x4F: "OP_PUSHNUM_NEG1",
    0x61: "OP_NOP",
    0x63: "OP_IF",
    0x64: "OP_NOTIF",
    0x67: "OP_ELSE",
    0x68: "OP_ENDIF",
    0x69: "OP_VERIFY",
    0x6A: "OP_RETURN",
    0x75: "OP_DROP",
    0x76: "OP_DUP",
    0x82: "OP_SIZE",
    0x87: "OP_EQUAL",
    0x88: "OP_EQUALVERIFY",
    0x9C: "OP_NUMEQUAL",
    0x9D: "OP_NUMEQUALVERIFY",
    0xA6: "OP_RIPEMD160",
    0xA8: "OP_SHA256",
    0xA9: "OP_HASH160",
    0xAA: "OP_HASH256",
    0xAC: "OP_CHECKSIG",
    0xAD: "OP_CHECKSIGVERIFY",
    0xAE: "OP_CHECKMULTISIG",
    0xB1: "OP_CLTV",
    0xB2: "OP_CSV",
    0xBA: "OP_CHECKSIGADD",
}


def asm(script: bytes) -> str:
    """Esplora's ``*_asm`` rendering (rust-bitcoin's opcode names)."""
    try:
        ops = iter_ops(script)
    except ValueError:
        return "OP_INVALID"
    words = []
    for op, data in ops:
        if data is not None and op != 0:
            width = {0x4C: "1", 0x4D: "2"}.get(op, "4")
            name = f"OP_PUSHBYTES_{op}" if op < 0x4C else f"OP_PUSHDATA{width}"
            words.append(f"{name} {data.hex()}")
        elif 0x51 <= op <= 0x60:
            words.append(f"OP_PUSHNUM_{op - 0x50}")
        else:
            words.append(_NAMES.get(op, f"OP_UNKNOWN_{op:#04x}"))
    return " ".join(words)
