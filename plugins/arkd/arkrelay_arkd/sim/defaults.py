"""arkd v0.9.15's configuration defaults, which are the simulator's.

Each value is arkd's default for the named ``ARKD_*`` environment variable
(internal/config/config.go at the tag, ``defaults`` and ``viper.SetDefault``), resolved the
way arkd resolves it at start-up (internal/core/application/service.go ``NewService``,
``resolveMinAmounts``). docs/simulators.md has the table, with how to change each one.
"""

from __future__ import annotations

__all__ = [
    "BAN_DURATION",
    "BAN_THRESHOLD",
    "BOARDING_EXIT_DELAY",
    "CHECKPOINT_EXIT_DELAY",
    "DUST",
    "MAX_OP_RETURN_OUTPUTS",
    "MAX_TX_WEIGHT",
    "SESSION_DURATION",
    "UNILATERAL_EXIT_DELAY",
    "UTXO_MAX_AMOUNT",
    "UTXO_MIN_AMOUNT",
    "VTXO_MAX_AMOUNT",
    "VTXO_MIN_AMOUNT",
    "VTXO_TREE_EXPIRY",
]

#: ARKD_UNILATERAL_EXIT_DELAY (and ARKD_PUBLIC_UNILATERAL_EXIT_DELAY): 24 hours, in seconds.
UNILATERAL_EXIT_DELAY = 86_400
#: ARKD_BOARDING_EXIT_DELAY: about 3 months, in seconds.
BOARDING_EXIT_DELAY = 7_776_000
#: ARKD_CHECKPOINT_EXIT_DELAY: 24 hours, in seconds.
CHECKPOINT_EXIT_DELAY = 86_400
#: ARKD_VTXO_TREE_EXPIRY: 604672 s (7 days rounded down to a multiple of 512).
VTXO_TREE_EXPIRY = 604_672
#: ARKD_VTXO_MIN_AMOUNT: -1, which arkd resolves to the dust limit.
VTXO_MIN_AMOUNT = -1
#: ARKD_VTXO_MAX_AMOUNT: -1, no limit.
VTXO_MAX_AMOUNT = -1
#: ARKD_UTXO_MIN_AMOUNT: -1; arkd raises anything below dust to dust.
UTXO_MIN_AMOUNT = -1
#: ARKD_UTXO_MAX_AMOUNT: -1, no limit (0 disables boarding).
UTXO_MAX_AMOUNT = -1
#: Not a setting: arkd-wallet's GetDustAmount, the min relay fee (250 sat/kw, 1 sat/vB)
#: for its biggest input (148 + 182 vbytes), pkg/arkd-wallet/core/application/wallet.
DUST = 330
#: ARKD_MAX_OP_RETURN_OUTS (0 is read as 1).
MAX_OP_RETURN_OUTPUTS = 3
#: ARKD_MAX_TX_WEIGHT: 1% of a block's 4,000,000 weight units.
MAX_TX_WEIGHT = 40_000
#: ARKD_SESSION_DURATION, seconds.
SESSION_DURATION = 30
#: ARKD_BAN_DURATION: ten session durations, seconds.
BAN_DURATION = 10 * SESSION_DURATION
#: ARKD_BAN_THRESHOLD: crimes before a ban.
BAN_THRESHOLD = 3
