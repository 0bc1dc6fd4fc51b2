"""The schema, once: every table Cove keeps, in SQLAlchemy Core so SQLite and PostgreSQL share it."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

# A column added after the first release is nullable or has a server default: ``store.migrate`` adds it to an
# existing database with ALTER TABLE, which SQLite allows only for such columns.

# Every key but the admin's is a tenant: what it creates is its own (``tenant_id`` of the rows below is the id of
# the key that owns them). A revoked key keeps its row, so that what it owned and did still names it.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String, primary_key=True),
    Column("key_hash", String, nullable=False, unique=True),
    Column("name", String, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("admin", Integer, nullable=False, server_default="0"),
    Column("quotas", JSON),  # null: none (the admin's)
    Column("revoked_at", Float),
)

# Scoped tokens for one sandbox (or one session of it). The token itself is signed and never stored; this row is
# what it may do and whether it still may.
tokens = Table(
    "tokens",
    metadata,
    Column("id", String, primary_key=True),
    Column("key_id", String, nullable=False),  # the key that minted it
    Column("tenant_id", String, nullable=False),
    Column("sandbox_id", String, nullable=False),
    Column("session_id", String),
    Column("scopes", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("revoked_at", Float),
)
Index("ix_tokens_tenant", tokens.c.tenant_id)

# Every call that changed something (or tried to): who, for which tenant, what, on what, with which result.
audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", Float, nullable=False),
    Column("by", String),  # key or token id; null: no valid credential
    Column("tenant_id", String),
    Column("action", String, nullable=False),
    Column("target", String),
    Column("status", Integer, nullable=False),
    Column("client", String),
)
Index("ix_audit_time", audit.c.time)
Index("ix_audit_tenant_time", audit.c.tenant_id, audit.c.time)

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
    Column("tenant_id", String),  # null only for a pooled sandbox, until it is claimed
)
Index("ix_sandboxes_state", sandboxes.c.state)
# States of warm-pool rows (``services.pool``): no user's sandbox, so a listing without a state leaves them out.
POOLED = "pooled"  # started ahead of time, waiting to be claimed
UNCLAIMED = "unclaimed"  # discarded from the pool without ever being claimed; the row only reserves its uid
HIDDEN_STATES = (POOLED, UNCLAIMED)
Index("ix_sandboxes_tenant", sandboxes.c.tenant_id)

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
    Column("tenant_id", String),  # its sandbox's
)
Index("ix_agent_sessions_sandbox", agent_sessions.c.sandbox_id)
Index("ix_agent_sessions_tenant", agent_sessions.c.tenant_id)
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
    Column("tenant_id", String),  # a resume finds only its own tenant's conversations
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
    Column("tenant_id", String),  # its sandbox's: a checkpoint outlives it
)
Index("ix_checkpoints_sandbox", checkpoints.c.sandbox_id)
Index("ix_checkpoints_tenant", checkpoints.c.tenant_id)

# A sandbox's published ports (preview URLs), dropped when it stops; each of its sandbox's tenant. The token its
# expose gave is a scoped token (``tokens``, scope ``preview``): only its id is here, never the token.
ports = Table(
    "ports",
    metadata,
    Column("sandbox_id", String, primary_key=True),
    Column("port", Integer, primary_key=True),
    Column("public", Boolean, nullable=False),
    Column("token_id", String, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("tenant_id", String),
)
