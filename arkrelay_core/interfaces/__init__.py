"""Typed interfaces between the core and its plugins.

A plugin implements one of these Protocols and returns a PluginSpec from a registration
hook; the contract tests in ``contract-tests/`` check an implementation against them.
"""

from .ark import (
    ArkBackend,
    ArkEvent,
    ArkInfo,
    FinalizedTx,
    InputSignature,
    InputToSign,
    OffchainTx,
    OwnershipProof,
    SubmittedTx,
    TxOutputSpec,
    Vtxo,
)
from .assets import AssetBackend, AssetBackendInfo, AssetBalance, AssetMeta
from .common import ROLES, Component, PluginContext, PluginSpec, Role, SignEvent
from .intent_types import ActionResult, IntentHandler, IntentTypeSpec, PayloadToSign
from .lightning import (
    DecodedInvoice,
    Invoice,
    InvoiceState,
    LightningBackend,
    LightningInfo,
    OnchainBalance,
    OnchainTx,
    Payment,
    PaymentStatus,
    TxConfirmation,
)
from .settlement import SettlementHost, SettlementRecord, SettlementState, SettlementStrategy
from .transport import InboundEvent, PublishResult, Receipt, Transport

__all__ = [
    "ROLES",
    "ActionResult",
    "ArkBackend",
    "ArkEvent",
    "ArkInfo",
    "AssetBackend",
    "AssetBackendInfo",
    "AssetBalance",
    "AssetMeta",
    "Component",
    "DecodedInvoice",
    "FinalizedTx",
    "InboundEvent",
    "InputSignature",
    "InputToSign",
    "IntentHandler",
    "IntentTypeSpec",
    "Invoice",
    "InvoiceState",
    "LightningBackend",
    "LightningInfo",
    "OffchainTx",
    "OnchainBalance",
    "OnchainTx",
    "OwnershipProof",
    "PayloadToSign",
    "Payment",
    "PaymentStatus",
    "PluginContext",
    "PluginSpec",
    "PublishResult",
    "Receipt",
    "Role",
    "SettlementHost",
    "SettlementRecord",
    "SettlementState",
    "SettlementStrategy",
    "SignEvent",
    "SubmittedTx",
    "Transport",
    "TxConfirmation",
    "TxOutputSpec",
    "Vtxo",
]
