"""The simulated network's records: invoice and payment states, refusals, and nodes."""

from __future__ import annotations

import dataclasses
import enum
import os
from typing import TYPE_CHECKING

import coincurve

from .chain import Wallet
from .streams import Subscription

if TYPE_CHECKING:
    from .network import SimNetwork

__all__ = [
    "Failure",
    "InvoiceState",
    "PayStatus",
    "SimError",
    "SimInvoice",
    "SimNode",
    "SimPayment",
]


class InvoiceState(enum.IntEnum):
    OPEN = 0
    SETTLED = 1
    CANCELED = 2
    ACCEPTED = 3


class PayStatus(enum.IntEnum):
    IN_FLIGHT = 1
    SUCCEEDED = 2
    FAILED = 3


class Failure(enum.IntEnum):
    NONE = 0
    TIMEOUT = 1
    NO_ROUTE = 2
    ERROR = 3
    INCORRECT_PAYMENT_DETAILS = 4
    INSUFFICIENT_BALANCE = 5
    CANCELED = 6


class SimError(Exception):
    """A refusal, sent as a gRPC status: ``status`` names a grpc.StatusCode member."""

    def __init__(self, message: str, status: str = "UNKNOWN") -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclasses.dataclass
class SimInvoice:
    payment_hash: bytes
    preimage: bytes | None
    value_msat: int
    memo: str
    payment_request: str
    payment_addr: bytes
    creation_date: int
    expiry: int
    add_index: int
    hold: bool
    state: InvoiceState = InvoiceState.OPEN
    settle_index: int = 0
    settle_date: int = 0
    amt_paid_msat: int = 0


@dataclasses.dataclass
class SimPayment:
    payment_hash: bytes
    payment_request: str
    value_msat: int
    fee_msat: int
    payment_index: int
    creation_time_ns: int
    status: PayStatus = PayStatus.IN_FLIGHT
    preimage: bytes = b""
    failure: Failure = Failure.NONE


class SimNode:
    """One node: its key, invoices, outgoing payments, balance, wallet and failure modes."""

    def __init__(
        self, network: SimNetwork, name: str, *, balance_msat: int, onchain_sat: int
    ) -> None:
        self.network = network
        self.name = name
        self.secret = os.urandom(32)
        self.pubkey = coincurve.PrivateKey(self.secret).public_key.format().hex()
        #: The macaroon lnd would have baked; callers send it hex-encoded.
        self.macaroon = b"arkrelay-sim-macaroon:" + os.urandom(16)
        self.balance_msat = balance_msat
        self.wallet = Wallet(network.chain, os.urandom(32), funds=onchain_sat)
        self.invoices: dict[bytes, SimInvoice] = {}
        self.payments: dict[bytes, SimPayment] = {}
        self.add_index = 0
        self.settle_index = 0
        self.payment_index = 0
        #: Whether its gRPC server is up (set by the server); offline nodes cannot be paid.
        self.online = False
        #: Failure modes: outgoing payments find no route / hang in flight until released.
        self.no_route = False
        self.stuck = False
        self._invoice_streams: list[Subscription] = []
        self._payment_streams: dict[bytes, list[Subscription]] = {}

    @property
    def macaroon_hex(self) -> str:
        return self.macaroon.hex()
