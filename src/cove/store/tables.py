"""The schema, once: every table Cove keeps, in SQLAlchemy Core so SQLite and PostgreSQL share it."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Float, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String, primary_key=True),
    Column("key_hash", String, nullable=False, unique=True),
    Column("name", String, nullable=False),
    Column("created_at", Float, nullable=False),
)

sandboxes = Table(
    "sandboxes",
    metadata,
    Column("id", String, primary_key=True),
    Column("state", String, nullable=False),
    Column("stop_reason", String),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("expires_at", Float),
    Column("idle_timeout", Float),
    Column("last_active_at", Float, nullable=False),
    Column("uid", Integer, nullable=False, unique=True),
    Column("pid", Integer),
    Column("init_pid", Integer),
    Column("spec", JSON, nullable=False),
    Column("enforced", JSON, nullable=False),
    Column("labels", JSON, nullable=False),
)
Index("ix_sandboxes_state", sandboxes.c.state)

sandbox_labels = Table(
    "sandbox_labels",
    metadata,
    Column("sandbox_id", String, primary_key=True),
    Column("key", String, primary_key=True),
    Column("value", Text, nullable=False),
)
Index("ix_sandbox_labels_kv", sandbox_labels.c.key, sandbox_labels.c.value)
