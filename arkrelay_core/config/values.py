"""Value types any settings Struct (the gateway's or a plugin's) can use as field types.

msgspec treats these as custom types: the config loader builds them in its ``dec_hook``, so a
plugin author writes ``macaroon: Secret`` or ``every: Duration`` and gets parsing, resolution and
precise errors for free.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import re

__all__ = ["Duration", "HostPort", "Secret", "ValueProblem", "kind_of"]


class ValueProblem(ValueError):
    """A config value could not be parsed; the message is ready to show to an operator."""


# --------------------------------------------------------------------------------------------
# Secret


class Secret:
    """A secret string whose value never shows in ``repr``, ``str``, logs or encoders.

    In a config file it is written as a literal, ``env:NAME`` or ``file:PATH``; the loader
    resolves the reference at load time and keeps ``origin`` (``"env:NAME"``, ``"file:PATH"``
    or ``None`` for a literal) so a masked dump can still say where the value came from.
    """

    __slots__ = ("_value", "origin")

    def __init__(self, value: str, *, origin: str | None = None) -> None:
        if not isinstance(value, str):
            raise TypeError(f"Secret value must be str, got {type(value).__name__}")
        self._value = value
        self.origin = origin

    def reveal(self) -> str:
        return self._value

    def masked(self) -> str:
        return "***" if self.origin is None else f"*** ({self.origin})"

    def __repr__(self) -> str:
        return f"Secret({self.masked()!r})"

    def __str__(self) -> str:
        return self.masked()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> object:
        # Pickling would copy the value somewhere we do not control (and masks nothing).
        raise TypeError("Secret values cannot be pickled")


# --------------------------------------------------------------------------------------------
# Duration

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_RE = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[smhd]?)")
DURATION_SYNTAX = "a duration such as 90s, 15m, 1h, 2d or a number of seconds"


class Duration:
    """A non-negative span of time: ``"90s"``, ``"15m"``, ``"1h"``, ``"2d"`` or seconds."""

    __slots__ = ("seconds",)

    seconds: float

    def __init__(self, seconds: float) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise TypeError(f"Duration seconds must be a number, got {type(seconds).__name__}")
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"Duration must be finite and not negative, got {seconds!r}")
        self.seconds = float(seconds)

    @classmethod
    def parse(cls, value: str | float) -> Duration:
        """Parse the config syntax; raises `ValueProblem` (a ValueError) or TypeError."""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise TypeError(f"expected {DURATION_SYNTAX}, got {kind_of(value)}")
        if not isinstance(value, str):
            if not math.isfinite(value) or value < 0:
                raise ValueProblem(f"invalid duration {value!r}; expected {DURATION_SYNTAX}")
            return cls(value)
        match = _DURATION_RE.fullmatch(value.strip())
        if match is None:
            raise ValueProblem(f"invalid duration {value!r}; expected {DURATION_SYNTAX}")
        number = float(match["number"])
        return cls(number * _UNIT_SECONDS[match["unit"] or "s"])

    def __str__(self) -> str:
        for unit in ("d", "h", "m"):
            count = self.seconds / _UNIT_SECONDS[unit]
            if count >= 1 and count.is_integer():
                return f"{int(count)}{unit}"
        if self.seconds.is_integer():
            return f"{int(self.seconds)}s"
        return f"{self.seconds:g}s"

    def __repr__(self) -> str:
        return f"Duration({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Duration):
            return NotImplemented
        return self.seconds == other.seconds

    def __hash__(self) -> int:
        return hash((Duration, self.seconds))


# --------------------------------------------------------------------------------------------
# HostPort

_HOST_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
HOSTPORT_SYNTAX = "host:port, e.g. 127.0.0.1:7070 or [::1]:7070"


class HostPort:
    """A ``host:port`` pair; IPv6 hosts are written in brackets (``[::1]:7447``)."""

    __slots__ = ("host", "port")

    host: str
    port: int

    def __init__(self, host: str, port: int) -> None:
        if not host:
            raise ValueError("HostPort host must not be empty")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"HostPort port must be an int in 0..65535, got {port!r}")
        self.host = host
        self.port = port

    @classmethod
    def parse(cls, value: str) -> HostPort:
        """Parse ``host:port``; raises `ValueProblem` (a ValueError) or TypeError."""
        if not isinstance(value, str):
            raise TypeError(f"expected {HOSTPORT_SYNTAX}, got {kind_of(value)}")
        text = value.strip()
        if text.startswith("["):
            host, sep, port_text = text[1:].partition("]:")
            if not sep:
                raise ValueProblem(f"invalid address {value!r}; expected {HOSTPORT_SYNTAX}")
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                raise ValueProblem(
                    f"invalid IPv6 address {host!r} in {value!r}; expected {HOSTPORT_SYNTAX}"
                ) from None
        else:
            host, sep, port_text = text.rpartition(":")
            if not sep or not host:
                raise ValueProblem(f"invalid address {value!r}; expected {HOSTPORT_SYNTAX}")
            if ":" in host:
                raise ValueProblem(
                    f"invalid address {value!r}: an IPv6 host needs brackets, as in "
                    f"[{host}]:{port_text}"
                )
            if _HOST_RE.fullmatch(host) is None:
                raise ValueProblem(
                    f"invalid host {host!r} in {value!r}; expected {HOSTPORT_SYNTAX}"
                )
        if not port_text.isascii() or not port_text.isdigit() or int(port_text) > 65535:
            raise ValueProblem(
                f"invalid port {port_text!r} in {value!r}; expected a number in 0..65535"
            )
        return cls(host, int(port_text))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __repr__(self) -> str:
        return f"HostPort({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HostPort):
            return NotImplemented
        return (self.host, self.port) == (other.host, other.port)

    def __hash__(self) -> int:
        return hash((HostPort, self.host, self.port))


def kind_of(value: object) -> str:
    """The TOML name of a parsed value's type, for error messages."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, list):
        return "array"
    return type(value).__name__
