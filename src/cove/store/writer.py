"""The hot-path writer: one thread with its own ``sqlite3`` connection, for the writes of every agent turn.

Through the async engine a small transaction is half a dozen hand-offs to aiosqlite's thread (begin, each
statement, commit, the pool's reset), each with SQLAlchemy's statement handling around it: measured at about a
quarter of the server's CPU per agent turn, on the same two cores as the agent. Here a whole transaction is one
hand-off, on plain SQL. Reads and the rarer writes stay on the engine; WAL lets them run beside this writer
(``busy_timeout`` covers two writers meeting). This is SQLite's writer: a PostgreSQL store would batch its own way.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from cove.store.db import sqlite_pragmas

T = TypeVar("T")


class SqliteWriter:
    def __init__(self, engine: AsyncEngine) -> None:
        database = engine.url.database
        if engine.url.get_backend_name() != "sqlite" or not database:
            raise ValueError("the hot-path writer writes to a SQLite database file")
        self._path = database
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cove-writer")
        self._connection: sqlite3.Connection | None = None  # opened on the writer thread

    async def transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in one transaction on the writer thread: committed if it returns, rolled back if not."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._run, work)

    def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._connection is None:
            self._connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            sqlite_pragmas(self._connection)
        connection = self._connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            result = work(connection)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return result

    def close(self) -> None:
        def close_connection() -> None:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        self._thread.submit(close_connection).result()
        self._thread.shutdown()
