"""The schema, once: every table Cove keeps, in SQLAlchemy Core so SQLite and PostgreSQL share it."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text

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

agent_sessions = Table(
    "agent_sessions",
    metadata,
    Column("id", String, primary_key=True),
    Column("sandbox_id", String, nullable=False),
    Column("status", String, nullable=False),
    Column("claude_session_id", String),
    Column("process_id", String),
    Column("token_hash", String, nullable=False),
    Column("turns", Integer, nullable=False),
    Column("usage", JSON, nullable=False),
    Column("proxy_usage", JSON, nullable=False),
    Column("total_cost_usd", Float, nullable=False),
    Column("config", JSON, nullable=False),
    Column("resume", String),
    Column("fork", Integer, nullable=False),
    Column("exit_code", Integer),
    Column("error", JSON),
    Column("last_seq", Integer, nullable=False),
    Column("journal_offset", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
Index("ix_agent_sessions_sandbox", agent_sessions.c.sandbox_id)
Index("ix_agent_sessions_token", agent_sessions.c.token_hash)

events = Table(
    "events",
    metadata,
    Column("session_id", String, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("type", String, nullable=False),
    # The event exactly as journalled: replays send this text as it is, without re-encoding.
    Column("data", Text, nullable=False),
)

# A stored conversation is ``content`` (the whole transcript when it was last saved in full) followed by its
# ``transcript_parts`` in order (what each later turn appended). Appending a row costs the same at turn 1,000 as
# at turn 1; rewriting one growing value wrote the whole conversation again after every turn.
transcripts = Table(
    "transcripts",
    metadata,
    Column("claude_session_id", String, primary_key=True),
    Column("sandbox_id", String, nullable=False),
    Column("project", String, nullable=False),
    Column("content", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)

transcript_parts = Table(
    "transcript_parts",
    metadata,
    Column("claude_session_id", String, primary_key=True),
    Column("part", Integer, primary_key=True),
    Column("content", Text, nullable=False),
)

# A checkpoint outlives its sandbox; ``layers`` is its chain of sealed layer ids, bottom first.
checkpoints = Table(
    "checkpoints",
    metadata,
    Column("id", String, primary_key=True),
    Column("sandbox_id", String, nullable=False),
    Column("name", String),
    Column("created_at", Float, nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("layers", JSON, nullable=False),
)
Index("ix_checkpoints_sandbox", checkpoints.c.sandbox_id)

# A sandbox's published ports (preview URLs), dropped when it stops. The token is not stored: it is derived from
# ``nonce`` with the server's preview secret (``store.ports``), so a copy of the database opens no preview.
ports = Table(
    "ports",
    metadata,
    Column("sandbox_id", String, primary_key=True),
    Column("port", Integer, primary_key=True),
    Column("public", Boolean, nullable=False),
    Column("nonce", String, nullable=False),
    Column("created_at", Float, nullable=False),
)
