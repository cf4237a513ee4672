"""The store's public surface is exactly the curated names."""

from __future__ import annotations

import arkrelay_core.store as store
from arkrelay_core.store import models
from arkrelay_core.store.models import Base


def test_store_exports_exactly_the_intended_names():
    assert set(store.__all__) == {
        "BackupError",
        "Base",
        "DatabaseCopy",
        "Migration",
        "StoreError",
        "backup_database",
        "create_engine_for",
        "current",
        "downgrade",
        "head",
        "history",
        "mask_url",
        "restore_database",
        "session_factory",
        "upgrade",
    }
    for name in store.__all__:
        assert getattr(store, name) is not None


def test_every_mapped_table_class_is_exported_from_models():
    mapped = {mapper.class_.__name__ for mapper in Base.registry.mappers}
    assert mapped == {
        "Asset",
        "Batch",
        "CeremonySession",
        "Challenge",
        "EventIn",
        "Intent",
        "Invoice",
        "L2Transaction",
        "OutboxEvent",
        "Settlement",
        "SettlementLeaf",
        "Vtxo",
    }
    assert mapped <= set(models.__all__)
    for name in models.__all__:
        assert getattr(models, name) is not None
