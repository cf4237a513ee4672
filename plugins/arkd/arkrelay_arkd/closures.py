"""ark-lib's tapscript closures, decoded and re-encoded, and its VTXO script validation.

A VTXO's taproot tree is a list of closures: leaves the server co-signs (forfeit closures)
and leaves the owner can spend alone after a relative delay (exit closures). arkd accepts a
VTXO script only when every leaf decodes as one of five closure kinds, every forfeit closure
names the server's key and no exit is shorter than its minimum (pkg/ark-lib/script/
closure.go and vtxo_script.go at v0.9.15). Decoding is strict the way ark-lib's is: a leaf
must re-encode to exactly its own bytes, so two spellings of one closure are not both
accepted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import coincurve

from .tapscript import bip68_sequence, push_int, sequence_delay

__all__ = [
    "CLTVMultisig",
    "CSVMultisig",
    "Closure",
    "ClosureError",
    "ConditionCSVMultisig",
    "ConditionMultisig",
    "Multisig",
    "RelativeLocktime",
    "decode_closure",
    "decode_vtxo_script",
    "exit_closures",
    "forfeit_closures",
    "smallest_exit_delay",
    "validate_vtxo_script",
]

OP_0, OP_1, OP_16 = 0x00, 0x51, 0x60
OP_PUSHDATA1, OP_PUSHDATA2, OP_PUSHDATA4 = 0x4C, 0x4D, 0x4E
OP_VERIFY, OP_DROP, OP_NUMEQUAL = 0x69, 0x75, 0x9C
OP_CHECKSIG, OP_CHECKSIGVERIFY, OP_CHECKSIGADD = 0xAC, 0xAD, 0xBA
OP_CLTV, OP_CSV = 0xB1, 0xB2

_SEQUENCE_DISABLED = 1 << 31
_SEQUENCE_TYPE_SECONDS = 1 << 22
#: nLockTime values from here on are timestamps, below are heights (BIP65).
LOCKTIME_SECONDS_FROM = 500_000_000


def _is_op_success(op: int) -> bool:
    # BIP342's OP_SUCCESSx: a leaf holding one is spendable by anyone, so ark-lib refuses it.
    return (
        op in (80, 98)
        or 126 <= op <= 129
        or 131 <= op <= 134
        or 137 <= op <= 138
        or 141 <= op <= 142
        or 149 <= op <= 153
        or 187 <= op <= 254
    )


class ClosureError(ValueError):
    """A leaf or VTXO script ark-lib would refuse; the text follows ark-lib's."""


@dataclasses.dataclass(frozen=True)
class RelativeLocktime:
    """A BIP68 relative delay: ``value`` seconds (a multiple of 512) or ``value`` blocks."""

    value: int
    blocks: bool = False

    @classmethod
    def from_sequence(cls, sequence: int) -> RelativeLocktime:
        if sequence & _SEQUENCE_DISABLED:
            raise ClosureError("sequence is disabled")
        if sequence & _SEQUENCE_TYPE_SECONDS:
            return cls(sequence_delay(sequence))
        return cls(sequence, blocks=True)

    @classmethod
    def parse(cls, value: int) -> RelativeLocktime:
        """arkd's reading of a configured delay: below 512 is blocks, else seconds rounded
        down to a multiple of 512 (arklib.ParseRelativeLocktime)."""
        if value < 512:
            return cls(value, blocks=True)
        return cls(value - value % 512)

    @property
    def sequence(self) -> int:
        if self.blocks:
            return self.value
        return bip68_sequence(self.value)

    def seconds(self) -> int:
        # ark-lib counts a block as one second (SECONDS_PER_BLOCK = 1) when it compares.
        return self.value


@dataclasses.dataclass(frozen=True)
class Multisig:
    """``<k1> CHECKSIGVERIFY ... <kn> CHECKSIG``, or with ``checksigadd`` the
    ``<k1> CHECKSIG <k2> CHECKSIGADD ... <n> NUMEQUAL`` form."""

    keys: tuple[bytes, ...]
    checksigadd: bool = False

    def script(self) -> bytes:
        out = bytearray()
        for i, key in enumerate(self.keys):
            out += bytes([32]) + key
            if self.checksigadd:
                out.append(OP_CHECKSIG if i == 0 else OP_CHECKSIGADD)
            else:
                out.append(OP_CHECKSIG if i == len(self.keys) - 1 else OP_CHECKSIGVERIFY)
        if self.checksigadd:
            out += push_int(len(self.keys)) + bytes([OP_NUMEQUAL])
        return bytes(out)


@dataclasses.dataclass(frozen=True)
class CSVMultisig:
    locktime: RelativeLocktime
    multisig: Multisig

    def script(self) -> bytes:
        return push_int(self.locktime.sequence) + bytes([OP_CSV, OP_DROP]) + self.multisig.script()


@dataclasses.dataclass(frozen=True)
class CLTVMultisig:
    locktime: int
    multisig: Multisig

    def script(self) -> bytes:
        return push_int(self.locktime) + bytes([OP_CLTV, OP_DROP]) + self.multisig.script()


@dataclasses.dataclass(frozen=True)
class ConditionMultisig:
    condition: bytes
    multisig: Multisig

    def script(self) -> bytes:
        return self.condition + bytes([OP_VERIFY]) + self.multisig.script()


@dataclasses.dataclass(frozen=True)
class ConditionCSVMultisig:
    condition: bytes
    csv: CSVMultisig

    def script(self) -> bytes:
        return self.condition + bytes([OP_VERIFY]) + self.csv.script()

    @property
    def locktime(self) -> RelativeLocktime:
        return self.csv.locktime

    @property
    def multisig(self) -> Multisig:
        return self.csv.multisig


Closure = CSVMultisig | CLTVMultisig | Multisig | ConditionMultisig | ConditionCSVMultisig


# ------------------------------------------------------------------------- decoding


def decode_closure(script: bytes) -> Closure:
    """The closure ``script`` is, tried in ark-lib's DecodeClosure order."""
    if not script:
        raise ClosureError("cannot decode empty script")
    if any(_is_op_success(op) for op, _, _ in _tokens(script, strict=False)):
        raise ClosureError("script contains forbidden OP_SUCCESS opcode")
    for decode in (_csv_multisig, _cltv_multisig, _multisig, _condition_multisig, _condition_csv):
        closure = decode(script)
        if closure is not None:
            return closure
    raise ClosureError(f"script does not match any known closure type: {script.hex()}")


def _tokens(script: bytes, *, strict: bool = True) -> list[tuple[int, bytes, int]]:
    """(opcode, pushed data, offset after it) for each opcode; a truncated push ends the
    list (and raises when ``strict``)."""
    out: list[tuple[int, bytes, int]] = []
    pos = 0
    while pos < len(script):
        op = script[pos]
        pos += 1
        size = 0
        if 1 <= op <= 75:
            size = op
        elif op in (OP_PUSHDATA1, OP_PUSHDATA2, OP_PUSHDATA4):
            width = {OP_PUSHDATA1: 1, OP_PUSHDATA2: 2, OP_PUSHDATA4: 4}[op]
            if pos + width > len(script):
                if strict:
                    raise ClosureError("truncated push")
                return out
            size = int.from_bytes(script[pos : pos + width], "little")
            pos += width
        if pos + size > len(script):
            if strict:
                raise ClosureError("truncated push")
            return out
        out.append((op, script[pos : pos + size], pos + size))
        pos += size
    return out


def _xonly(data: bytes) -> bytes:
    try:
        coincurve.PublicKey(b"\x02" + data)
    except ValueError as exc:
        raise ClosureError(f"invalid x-only key {data.hex()}") from exc
    return data


def _multisig(script: bytes) -> Multisig | None:
    for candidate in (_checksig_chain(script), _checksigadd_chain(script)):
        if candidate is not None and candidate.script() == script:
            return candidate
    return None


def _checksig_chain(script: bytes) -> Multisig | None:
    tokens = _try_tokens(script)
    if tokens is None or len(tokens) < 2 or len(tokens) % 2:
        return None
    keys = []
    for i in range(0, len(tokens), 2):
        (op, data, _), (check, _, _) = tokens[i], tokens[i + 1]
        last = i + 2 == len(tokens)
        if op != 32 or check != (OP_CHECKSIG if last else OP_CHECKSIGVERIFY):
            return None
        keys.append(_xonly(data))
    return Multisig(tuple(keys))


def _checksigadd_chain(script: bytes) -> Multisig | None:
    tokens = _try_tokens(script)
    if tokens is None or len(tokens) < 4 or len(tokens) % 2:
        return None
    keys = []
    for i in range(0, len(tokens) - 2, 2):
        (op, data, _), (check, _, _) = tokens[i], tokens[i + 1]
        if op != 32 or check != (OP_CHECKSIG if i == 0 else OP_CHECKSIGADD):
            return None
        keys.append(_xonly(data))
    count, numequal = tokens[-2][0], tokens[-1][0]
    if numequal != OP_NUMEQUAL or _small_int(count) != len(keys):
        return None
    return Multisig(tuple(keys), checksigadd=True)


def _try_tokens(script: bytes) -> list[tuple[int, bytes, int]] | None:
    try:
        return _tokens(script)
    except ClosureError:
        return None


def _small_int(op: int) -> int | None:
    if op == OP_0:
        return 0
    if OP_1 <= op <= OP_16:
        return op - OP_1 + 1
    return None


def _locked(script: bytes, opcode: int) -> tuple[int, Multisig] | None:
    """(the number before ``opcode OP_DROP``, the multisig after), minimally encoded."""
    tokens = _try_tokens(script)
    if tokens is None or len(tokens) < 3:
        return None
    (op, data, _), (lock, _, _), (drop, _, rest) = tokens[:3]
    if lock != opcode or drop != OP_DROP:
        return None
    small = _small_int(op)
    value = small if small is not None else _script_num(data)
    if value is None:
        return None
    multisig = _multisig(script[rest:])
    if multisig is None:
        return None
    return value, multisig


def _csv_multisig(script: bytes) -> CSVMultisig | None:
    locked = _locked(script, OP_CSV)
    if locked is None:
        return None
    sequence, multisig = locked
    closure = CSVMultisig(RelativeLocktime.from_sequence(sequence), multisig)
    return closure if closure.script() == script else None


def _cltv_multisig(script: bytes) -> CLTVMultisig | None:
    locked = _locked(script, OP_CLTV)
    if locked is None:
        return None
    closure = CLTVMultisig(locked[0], locked[1])
    return closure if closure.script() == script else None


def _split_condition(script: bytes) -> tuple[bytes, bytes] | None:
    """(condition, rest) around the first OP_VERIFY. ark-lib keeps a condition as opcodes
    and pushed bytes only, so a condition using OP_PUSHDATA1/2/4 never re-encodes to
    itself there: such a leaf is refused here too."""
    for op, _, end in _tokens(script, strict=False):
        if op in (OP_PUSHDATA1, OP_PUSHDATA2, OP_PUSHDATA4):
            return None
        if op == OP_VERIFY:
            return script[: end - 1], script[end:]
    return None


def _condition_multisig(script: bytes) -> ConditionMultisig | None:
    split = _split_condition(script)
    if split is None:
        return None
    multisig = _multisig(split[1])
    if multisig is None:
        return None
    closure = ConditionMultisig(split[0], multisig)
    return closure if closure.script() == script else None


def _condition_csv(script: bytes) -> ConditionCSVMultisig | None:
    split = _split_condition(script)
    if split is None:
        return None
    csv = _csv_multisig(split[1])
    if csv is None:
        return None
    closure = ConditionCSVMultisig(split[0], csv)
    return closure if closure.script() == script else None


def _script_num(data: bytes) -> int | None:
    """A minimally encoded script number of up to 5 bytes, or None."""
    if not data or len(data) > 5:
        return None
    if not data[-1] & 0x7F and (len(data) == 1 or not data[-2] & 0x80):
        return None  # not minimal
    value = int.from_bytes(data, "little")
    if data[-1] & 0x80:
        value = -(value & ~(0x80 << (8 * (len(data) - 1))))
    return value


# ------------------------------------------------------------------------- VTXO scripts


def exit_closures(closures: Iterable[Closure]) -> list[CSVMultisig | ConditionCSVMultisig]:
    return [c for c in closures if isinstance(c, CSVMultisig | ConditionCSVMultisig)]


def forfeit_closures(closures: Iterable[Closure]) -> list[Closure]:
    return [c for c in closures if not isinstance(c, CSVMultisig | ConditionCSVMultisig)]


def _keys(closure: Closure) -> tuple[bytes, ...]:
    return closure.keys if isinstance(closure, Multisig) else closure.multisig.keys


def smallest_exit_delay(closures: Iterable[Closure]) -> RelativeLocktime | None:
    exits = [c.locktime for c in exit_closures(closures)]
    return min(exits, key=RelativeLocktime.seconds) if exits else None


def decode_vtxo_script(scripts: Sequence[bytes]) -> list[Closure]:
    """ark-lib's TapscriptsVtxoScript.Decode: every leaf must be a known closure."""
    if not scripts:
        raise ClosureError("empty scripts array")
    return [decode_closure(s) for s in scripts]


def validate_vtxo_script(
    closures: Sequence[Closure],
    signer: bytes,
    min_exit: RelativeLocktime,
    *,
    block_type_allowed: bool = True,
) -> None:
    """ark-lib's TapscriptsVtxoScript.Validate against one signer key."""
    for closure in forfeit_closures(closures):
        if (
            isinstance(closure, CLTVMultisig)
            and not block_type_allowed
            and closure.locktime < LOCKTIME_SECONDS_FROM
        ):
            raise ClosureError("invalid forfeit closure, CLTV block type not allowed")
        if signer not in _keys(closure):
            raise ClosureError("invalid forfeit closure, signer pubkey not found")
    for closure in exit_closures(closures):
        if not block_type_allowed and closure.locktime.blocks:
            raise ClosureError("invalid exit closure, CSV block type not allowed")
    smallest = smallest_exit_delay(closures)
    if smallest is not None and smallest.seconds() < min_exit.seconds():
        raise ClosureError("exit delay is too short")
