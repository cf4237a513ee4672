"""Declarative base, constraint naming convention and the column types the models share."""

from __future__ import annotations

from typing import Annotated, Any

from sqlalchemy import JSON, BigInteger, Integer, MetaData, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, mapped_column

__all__ = [
    "MAX_CLIENT_ID_LENGTH",
    "NAMING_CONVENTION",
    "AutoId",
    "Base",
    "ClientId",
    "Hex64",
    "JsonDoc",
    "JsonList",
    "Kind",
    "Label",
    "UnixTime",
    "VtxoRef",
    "check_in",
]

# Every constraint and index gets a predictable name, so a migration written on SQLite
# drops and alters exactly the same objects on PostgreSQL.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Identifiers chosen by wallets and solvers (action_id, batch_id, request ids) are free-form
# strings on the wire; validation must reject longer ones before they reach the store.
MAX_CLIENT_ID_LENGTH = 256

# jsonb on PostgreSQL: unlike json it compares, indexes and deduplicates.
JSON_TYPE = JSON().with_variant(JSONB(), "postgresql")

# SQLite only auto-numbers a column declared exactly INTEGER PRIMARY KEY.
AUTO_ID_TYPE = BigInteger().with_variant(Integer(), "sqlite")

Hex64 = Annotated[str, mapped_column(String(64))]
"""Event ids, pubkeys (x-only), txids, asset ids, payment hashes: 64 lowercase hex chars."""

VtxoRef = Annotated[str, mapped_column(String(80))]
"""An outpoint ``txid:vout``."""

ClientId = Annotated[str, mapped_column(String(MAX_CLIENT_ID_LENGTH))]
Label = Annotated[str, mapped_column(String(64))]
Kind = Annotated[int, mapped_column(Integer())]
UnixTime = Annotated[int, mapped_column(BigInteger())]
"""Unix seconds (UTC), stored as an integer so both databases agree without time zones."""

JsonDoc = Annotated[dict[str, Any], mapped_column(JSON_TYPE)]
JsonList = Annotated[list[Any], mapped_column(JSON_TYPE)]
AutoId = Annotated[int, mapped_column(AUTO_ID_TYPE, primary_key=True, autoincrement=True)]


class Base(DeclarativeBase):
    """Base of every ArkRelay table; its ``metadata`` is what Alembic migrations must match."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {str: Text()}


def check_in(column: str, values: tuple[str, ...]) -> str:
    """SQL for a CHECK that ``column`` holds one of ``values``."""
    quoted = ", ".join("'" + value.replace("'", "''") + "'" for value in values)
    return f"{column} IN ({quoted})"
