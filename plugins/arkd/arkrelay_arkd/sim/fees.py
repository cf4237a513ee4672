"""arkd's intent fees: four CEL programs, one per kind of intent input and output.

arkd v0.9.15 prices an intent with pkg/ark-lib/arkfee: each offchain input (a VTXO), onchain
input (a boarding UTXO), offchain output and onchain output (a collaborative exit) is run
through its program and the results are summed, then rounded up to whole sats. A program
is checked when it is set: it must compile in its environment (the variables below and a
``now()`` function) and its type must be double. An empty program costs nothing.

The programs are evaluated with cel-expr-python, the CEL project's own Python binding of
cel-cpp: it type-checks as cel-go does, so the refusals arkd's fixtures expect (undeclared
references, no matching overload, a non-double result) happen here at the same step.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable, Sequence

import msgspec
from cel_expr_python import cel

__all__ = [
    "FeeEstimator",
    "FeeProgramError",
    "IntentFeePrograms",
    "OffchainInput",
    "OnchainInput",
    "Output",
    "to_satoshis",
]

#: The ``inputType`` of an offchain input (arkfee.VtxoType).
VTXO, RECOVERABLE, NOTE = "vtxo", "recoverable", "note"

_OFFCHAIN_INPUT_VARS = {
    "amount": cel.Type.DOUBLE,
    "expiry": cel.Type.DOUBLE,
    "birth": cel.Type.DOUBLE,
    "weight": cel.Type.DOUBLE,
    "inputType": cel.Type.STRING,
}
_ONCHAIN_INPUT_VARS = {"amount": cel.Type.DOUBLE}
_OUTPUT_VARS = {"amount": cel.Type.DOUBLE, "script": cel.Type.STRING}


class FeeProgramError(ValueError):
    """A fee program arkd would refuse, or one that failed on an input."""


class IntentFeePrograms(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """arkd's intent fee programs (GetInfo ``fees.intent_fee``); an empty one is free."""

    offchain_input: str = ""
    offchain_output: str = ""
    onchain_input: str = ""
    onchain_output: str = ""


@dataclasses.dataclass(frozen=True)
class OffchainInput:
    amount: int
    #: Unix seconds; None leaves the variable unset (a program reading it then fails).
    expiry: int | None = None
    birth: int | None = None
    input_type: str = VTXO
    weight: float = 0.0

    def activation(self) -> dict[str, object]:
        args: dict[str, object] = {
            "amount": float(self.amount),
            "inputType": self.input_type,
            "weight": float(self.weight),
        }
        if self.expiry is not None:
            args["expiry"] = float(self.expiry)
        if self.birth is not None:
            args["birth"] = float(self.birth)
        return args


@dataclasses.dataclass(frozen=True)
class OnchainInput:
    amount: int

    def activation(self) -> dict[str, object]:
        return {"amount": float(self.amount)}


@dataclasses.dataclass(frozen=True)
class Output:
    amount: int
    script: str = ""  # hex pkScript

    def activation(self) -> dict[str, object]:
        return {"amount": float(self.amount), "script": self.script}


def to_satoshis(fee: float) -> int:
    """arkfee's FeeAmount.ToSatoshis: any fraction of a sat is a whole sat."""
    return math.ceil(fee)


class _Program:
    def __init__(self, env: cel.Env, text: str, what: str) -> None:
        try:
            self._expr = env.compile(text)
        except RuntimeError as exc:
            raise FeeProgramError(f"failed to evaluate batch {what} program: {exc}") from exc
        kind = self._expr.return_type()
        if kind != cel.Type.DOUBLE:
            raise FeeProgramError(
                f"failed to evaluate batch {what} program: "
                f"expected return type double, got {kind.name().lower()}"
            )
        self.env = env

    def eval(self, args: dict[str, object]) -> float:
        try:
            result = self._expr.eval(data=args)
        except RuntimeError as exc:
            raise FeeProgramError(str(exc)) from exc
        value = result.value()
        if result.type() == cel.Type.ERROR:
            # An evaluation error (a variable left unset, a division by zero) comes back
            # as a value, as in cel-go; arkd fails the estimate with it.
            raise FeeProgramError(str(value))
        if not isinstance(value, float):
            raise FeeProgramError(f"fee program returned {value!r}, not a double")
        return value


class FeeEstimator:
    """arkfee.Estimator over ``programs``; raises FeeProgramError for a bad program."""

    def __init__(
        self, programs: IntentFeePrograms, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.programs = programs
        self._clock = clock
        now = cel.FunctionDecl(
            "now", [cel.Overload("now_double", cel.Type.DOUBLE, [], impl=self._now)]
        )

        def compile_one(text: str, variables: dict[str, cel.Type], what: str) -> _Program | None:
            if not text:
                return None
            return _Program(cel.NewEnv(variables=variables, functions=[now]), text, what)

        self._offchain_input = compile_one(
            programs.offchain_input, _OFFCHAIN_INPUT_VARS, "offchain input"
        )
        self._onchain_input = compile_one(
            programs.onchain_input, _ONCHAIN_INPUT_VARS, "onchain input"
        )
        self._offchain_output = compile_one(
            programs.offchain_output, _OUTPUT_VARS, "offchain output"
        )
        self._onchain_output = compile_one(programs.onchain_output, _OUTPUT_VARS, "onchain output")
        # cel-cpp's thread safety for one expression is not documented; gRPC handlers run
        # on a thread pool, so evaluations take turns.
        self._lock = threading.Lock()

    def _now(self) -> float:
        # arkd's now(): Unix seconds, whole (time.Now().Unix()).
        return float(int(self._clock()))

    def _run(self, program: _Program | None, args: dict[str, object]) -> float:
        if program is None:
            return 0.0
        with self._lock:
            return program.eval(args)

    def offchain_input(self, item: OffchainInput) -> float:
        return self._run(self._offchain_input, item.activation())

    def onchain_input(self, item: OnchainInput) -> float:
        return self._run(self._onchain_input, item.activation())

    def offchain_output(self, item: Output) -> float:
        return self._run(self._offchain_output, item.activation())

    def onchain_output(self, item: Output) -> float:
        return self._run(self._onchain_output, item.activation())

    def total(
        self,
        offchain_inputs: Sequence[OffchainInput] = (),
        onchain_inputs: Sequence[OnchainInput] = (),
        offchain_outputs: Sequence[Output] = (),
        onchain_outputs: Sequence[Output] = (),
    ) -> float:
        """arkfee's Estimator.Eval: the sum over every input and output, unrounded."""
        fee = 0.0
        for item in offchain_inputs:
            fee += self.offchain_input(item)
        for onchain in onchain_inputs:
            fee += self.onchain_input(onchain)
        for out in offchain_outputs:
            fee += self.offchain_output(out)
        for out in onchain_outputs:
            fee += self.onchain_output(out)
        return fee
