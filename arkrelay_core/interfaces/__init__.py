"""Typed interfaces between the core and its plugins.

A plugin implements one of these Protocols and returns a PluginSpec from a registration
hook; the contract tests in ``contract-tests/`` check an implementation against them.
Optional capabilities (``capabilities``) are Protocols too: the core tests for them with
``isinstance`` and uses nothing they do not declare.
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
from .capabilities import (
    DaemonTarget,
    Inventory,
    InventoryKeeper,
    InventoryLevel,
    InventoryLevels,
    InventoryView,
    Listener,
    RelayReader,
    Simulatable,
)
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
from .observers import GatewayView, SessionView
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
    "DaemonTarget",
    "DecodedInvoice",
    "FinalizedTx",
    "GatewayView",
    "InboundEvent",
    "InputSignature",
    "InputToSign",
    "IntentHandler",
    "IntentTypeSpec",
    "Inventory",
    "InventoryKeeper",
    "InventoryLevel",
    "InventoryLevels",
    "InventoryView",
    "Invoice",
    "InvoiceState",
    "LightningBackend",
    "LightningInfo",
    "Listener",
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
    "RelayReader",
    "Role",
    "SessionView",
    "SettlementHost",
    "SettlementRecord",
    "SettlementState",
    "SettlementStrategy",
    "SignEvent",
    "Simulatable",
    "SubmittedTx",
    "Transport",
    "TxConfirmation",
    "TxOutputSpec",
    "Vtxo",
]
