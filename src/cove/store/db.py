"""Opening the database: SQLite in WAL mode by default, through SQLAlchemy's async engine, brought up to the
schema (``store.migrate``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from cove.store.migrate import add_missing
from cove.store.tables import metadata

log = logging.getLogger("cove.store")


def sqlite_pragmas(dbapi_connection: Any, _record: Any = None) -> None:
    """For every connection to the database, the engine's and the hot-path writer's (``store.writer``)."""
    cursor = dbapi_connection.cursor()
    # WAL lets readers (attach replays, lists) proceed while the ingester writes; NORMAL is durable in WAL mode
    # across process crashes, which is the failure Cove promises to survive.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    # A large transaction (a long conversation saved whole) grows the WAL; truncate it back after checkpoints
    # rather than keep its largest size on the disk for ever.
    cursor.execute("PRAGMA journal_size_limit=16777216")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


async def open_engine(path: Path) -> AsyncEngine:
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    event.listen(engine.sync_engine, "connect", sqlite_pragmas)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        added = await conn.run_sync(add_missing, metadata)
    if added:
        log.info("added to the database: %s", ", ".join(added))
    return engine
