"""Bitcoin primitives both Bitcoin-facing plugins share, as pure functions over bytes.

Today the BIP 341 signature message: arkd's plugin (client and simulator) and lnd's chain
simulator sign and check taproot signatures with it, so a signature one of them makes is
judged the same by the others and by a real node.
"""

from arkrelay_core.bitcoin.sighash import (
    SIGHASH_ALL,
    SIGHASH_ANYONECANPAY,
    SIGHASH_DEFAULT,
    SIGHASH_NONE,
    SIGHASH_SINGLE,
    TAPROOT_SIGHASH_TYPES,
    TAPSCRIPT_LEAF_VERSION,
    InvalidHashType,
    SighashError,
    SingleWithoutOutput,
    tagged_hash,
    taproot_sig_message,
    taproot_sighash,
)

__all__ = [
    "SIGHASH_ALL",
    "SIGHASH_ANYONECANPAY",
    "SIGHASH_DEFAULT",
    "SIGHASH_NONE",
    "SIGHASH_SINGLE",
    "TAPROOT_SIGHASH_TYPES",
    "TAPSCRIPT_LEAF_VERSION",
    "InvalidHashType",
    "SighashError",
    "SingleWithoutOutput",
    "tagged_hash",
    "taproot_sig_message",
    "taproot_sighash",
]
