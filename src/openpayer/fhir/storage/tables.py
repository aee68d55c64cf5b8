"""The FHIR store's tables: current resources, their history (the change log), and the search index.

Design (after HAPI's and LinuxForHealth's index tables, and Microsoft's normalised token/date tables):
- `fhir_resource` holds one row per logical resource with its current version's bytes (compressed JSON),
  and a surrogate integer `rid` that every index row points at.
- `fhir_history` holds every version ever written, ordered by `seq`: it is the change log that system
  `_history` and bulk export `_since` read.
- `fhir_idx_*` hold the search index of *current, non-deleted* versions only. Each row carries `hkey`,
  a 64-bit hash of (environment, resource type, parameter code): one narrow integer that makes
  `(hkey, value)` B-tree indexes selective without repeating three strings on every row.
Timestamps are integer microseconds since the Unix epoch (UTC), identical on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
    text,
)

from openpayer.db import BigId, metadata


def index_key(env: str, resource_type: str, param: str) -> int:
    """The signed 64-bit identity of (environment, type, parameter), stored as `hkey` on index rows."""
    digest = hashlib.blake2b(f"{env}|{resource_type}|{param}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


fhir_resource = Table(
    "fhir_resource",
    metadata,
    Column("rid", BigId, primary_key=True, autoincrement=True),
    Column("env", String(32), nullable=False),
    Column("type", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("seq", BigInteger, nullable=False),
    Column("content", LargeBinary, nullable=True),
    UniqueConstraint("env", "type", "id"),
    Index("ix_fhir_resource_env_type_last_updated", "env", "type", "last_updated"),
    # The default search order is rid within a type. PostgreSQL otherwise walks the primary key from the
    # first row and filters by type, which costs a scan of every earlier type; covering id and deleted lets
    # the page of a search be read from this index alone (an index-only scan once VACUUM has run).
    Index("ix_fhir_resource_env_type_rid", "env", "type", "rid", postgresql_include=["id", "deleted"]),
)

fhir_history = Table(
    "fhir_history",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("env", String(32), nullable=False),
    Column("type", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", BigInteger, nullable=False),
    Column("method", String(8), nullable=False),  # POST, PUT, PATCH, DELETE
    Column("deleted", Boolean, nullable=False, default=False),
    Column("content", LargeBinary, nullable=True),
    UniqueConstraint("env", "type", "id", "version"),
    Index("ix_fhir_history_env_last_updated", "env", "last_updated"),
    Index("ix_fhir_history_env_type_last_updated", "env", "type", "last_updated"),
)


def _rid() -> Column[int]:
    """The indexed resource's row. No foreign key: index rows are derived data that only the repository and
    the bulk writer write and delete, in the transaction that changes the resource, and resource rows are
    never deleted (a delete is a new version). The key's check cost PostgreSQL a third of its CPU in a bulk
    load (~20 index rows per ExplanationOfBenefit); `tests/fhir/test_index_integrity.py` checks that no
    index row outlives its resource's current version."""
    return Column("rid", BigInteger, nullable=False)


idx_string = Table(
    "fhir_idx_string",
    metadata,
    _rid(),
    Column("hkey", BigInteger, nullable=False),
    Column("value_norm", String(255), nullable=False),
    Column("value_exact", String(512), nullable=False),
    Index("ix_fhir_idx_string_hkey_norm", "hkey", "value_norm"),
    Index("ix_fhir_idx_string_rid", "rid"),
    # String search is a prefix LIKE on value_norm, which a PostgreSQL B-tree in a non-C collation cannot
    # serve; text_pattern_ops can. (SQLite ignores the operator class; search/sql.py gives it a BINARY range.)
    Index(
        "ix_fhir_idx_string_hkey_norm_pattern",
        "hkey",
        "value_norm",
        postgresql_ops={"value_norm": "text_pattern_ops"},
        postgresql_include=["rid"],  # a name search reads the index alone (migration 0027)
    ),
)

idx_token = Table(
    "fhir_idx_token",
    metadata,
    _rid(),
    Column("hkey", BigInteger, nullable=False),
    Column("system", String(255), nullable=True),
    Column("code", String(255), nullable=True),
    Column("text_norm", String(255), nullable=True),
    # rid last: the rows of one (parameter, code) come in rid order, so a search page can merge them with
    # the type's rows without sorting every match (a specialty with 16,820 roles: 840 ms -> 0.2 ms).
    Index("ix_fhir_idx_token_hkey_code", "hkey", "code", "rid", postgresql_include=["system"]),
    Index("ix_fhir_idx_token_rid", "rid"),
)

idx_date = Table(
    "fhir_idx_date",
    metadata,
    _rid(),
    Column("hkey", BigInteger, nullable=False),
    Column("low", BigInteger, nullable=False),
    Column("high", BigInteger, nullable=False),
    Index("ix_fhir_idx_date_hkey_low", "hkey", "low"),
    Index("ix_fhir_idx_date_hkey_high", "hkey", "high"),
    Index("ix_fhir_idx_date_rid", "rid"),
)

idx_number = Table(
    "fhir_idx_number",
    metadata,
    _rid(),
    Column("hkey", BigInteger, nullable=False),
    Column("value", Float, nullable=False),
    Index("ix_fhir_idx_number_hkey_value", "hkey", "value"),
    Index("ix_fhir_idx_number_rid", "rid"),
)

idx_quantity = Table(
    "fhir_idx_quantity",
    metadata,
    _rid(),
    Column("hkey", BigInteger, nullable=False),
    Column("value", Float, nullable=False),
    Column("system", String(255), nullable=True),
    Column("code", String(64), nullable=True),
    Column("unit", String(64), nullable=True),
    Index("ix_fhir_idx_quantity_hkey_value", "hkey", "value"),
    Index("ix_fhir_idx_quantity_rid", "rid"),
)

idx_reference = Table(
    "fhir_idx_reference",
    metadata,
    _rid(),
    Column("hkey", BigInteger, nullable=False),
    Column("target_type", String(64), nullable=True),
    Column("target_id", String(64), nullable=True),
    Column("url", String(512), nullable=True),
    Column("ident_system", String(255), nullable=True),
    Column("ident_value", String(255), nullable=True),
    # The rid of the local target (env, target_type, target_id), whether or not it is deleted; NULL while
    # no such resource exists (`storage/targets.py` keeps it). Chains and includes join by it: one table
    # fewer to plan than the (env, type, id) hop through `fhir_resource` (migration 0031).
    Column("target_rid", BigInteger, nullable=True),
    Index("ix_fhir_idx_reference_hkey_target", "hkey", "target_id", "target_type", "rid"),
    Index("ix_fhir_idx_reference_hkey_target_rid", "hkey", "target_rid", "rid"),
    Index("ix_fhir_idx_reference_target", "target_id", "target_type"),
    # search by absolute URL / canonical, and local references that were written as absolute URLs on our base.
    # Only the rows with a URL: a local reference has none, and every search by URL implies one (0032).
    Index(
        "ix_fhir_idx_reference_hkey_url",
        "hkey",
        "url",
        postgresql_where=text("url IS NOT NULL"),
        sqlite_where=text("url IS NOT NULL"),
    ),
    Index("ix_fhir_idx_reference_rid", "rid"),
)

idx_uri = Table(
    "fhir_idx_uri",
    metadata,
    _rid(),
    Column("hkey", BigInteger, nullable=False),
    Column("value", String(512), nullable=False),
    Index("ix_fhir_idx_uri_hkey_value", "hkey", "value", "rid"),
    Index("ix_fhir_idx_uri_rid", "rid"),
)

idx_special = Table(
    "fhir_idx_special",
    metadata,
    _rid(),
    Column("hkey", BigInteger, nullable=False),
    Column("latitude", Float, nullable=False),
    Column("longitude", Float, nullable=False),
    Index("ix_fhir_idx_special_hkey_lat", "hkey", "latitude"),
    Index("ix_fhir_idx_special_rid", "rid"),
)

INDEX_TABLES = (
    idx_string,
    idx_token,
    idx_date,
    idx_number,
    idx_quantity,
    idx_reference,
    idx_uri,
    idx_special,
)
