"""Bringing an existing database up to the schema: the columns and indexes added since it was made.

``metadata.create_all`` makes the tables a database lacks, whole, but leaves the tables it has alone; a column
added to one of them since would be missing, and every query naming it would fail. Cove has no migration tool:
its schema only ever grows by nullable columns (or columns with a server default) and indexes, and those are
added here on start-up, so an existing ``$COVE_HOME`` keeps working. A change that needs more (a NOT NULL column
without a default, a column renamed) is refused by name, never half-applied.
"""

from __future__ import annotations

from sqlalchemy import Connection, MetaData, Table, inspect, text, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.schema import CreateColumn

from cove.store.tables import HIDDEN_STATES, agent_sessions, checkpoints, sandboxes, transcripts


class SchemaChangeRefused(RuntimeError):
    """The database lacks a column that cannot be added in place."""


def add_missing(connection: Connection, metadata: MetaData) -> list[str]:
    """Add to the tables this database already has every column and index of ``metadata`` they lack; returns
    the columns added, as ``table.column``."""
    inspector = inspect(connection)
    added = []
    for table in metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue  # create_all makes it whole
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable and column.server_default is None:
                raise SchemaChangeRefused(
                    f"the database lacks {table.name}.{column.name}, which is NOT NULL without a default: "
                    "it cannot be added in place"
                )
            definition = CreateColumn(column).compile(dialect=connection.dialect)
            connection.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {definition}"))
            added.append(f"{table.name}.{column.name}")
        for index in table.indexes:
            index.create(connection, checkfirst=True)
    return added


def assign_tenant(connection: Connection, tables: list[Table], tenant_id: str, *, skip_states: tuple[str, ...]) -> int:
    """Give every row of ``tables`` without a tenant to ``tenant_id``: what a database made before tenants holds
    was the admin's. Rows of a table with a ``state`` in ``skip_states`` (pooled sandboxes: nobody's until
    claimed) are left as they are. Returns the number of rows changed."""
    changed = 0
    for table in tables:
        statement = update(table).where(table.c.tenant_id.is_(None)).values(tenant_id=tenant_id)
        if "state" in table.c:
            statement = statement.where(table.c.state.not_in(skip_states))
        changed += connection.execute(statement).rowcount
    return changed


async def give_orphans_to(engine: AsyncEngine, tenant_id: str) -> int:
    """What a database from before tenants holds becomes ``tenant_id``'s (the admin's): its sandboxes (but the
    pooled ones), sessions, checkpoints and stored conversations."""
    owned = [sandboxes, agent_sessions, checkpoints, transcripts]
    async with engine.begin() as conn:
        changed: int = await conn.run_sync(assign_tenant, owned, tenant_id, skip_states=HIDDEN_STATES)
    return changed
