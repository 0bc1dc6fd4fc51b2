"""An existing database keeps working: the columns and indexes added since it was made are added on start-up,
what it held before tenants becomes the admin's, and a change that cannot be made in place is refused by name."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, inspect

from cove.store.db import open_engine
from cove.store.keys import hash_key, new_key
from cove.store.migrate import SchemaChangeRefused, add_missing
from cove.store.tables import metadata
from tests.conftest import CoveServer

# What tenants added to tables that existed before them.
ADDED = {
    "api_keys": {"admin", "quotas", "revoked_at"},
    "sandboxes": {"tenant_id"},
    "agent_sessions": {"tenant_id"},
    "checkpoints": {"tenant_id"},
    "transcripts": {"tenant_id"},
}


def make_old_database(path: Path) -> None:
    """The database a server made before tenants: the tables of then, without the columns added since."""
    old = MetaData()
    for table in metadata.sorted_tables:
        if table.name in ("tokens", "audit"):
            continue
        columns = [column._copy() for column in table.columns if column.name not in ADDED.get(table.name, set())]
        Table(table.name, old, *columns)
    engine = create_engine(f"sqlite:///{path}")
    old.create_all(engine)
    engine.dispose()


async def test_the_columns_and_indexes_added_since_are_added_and_rows_kept(tmp_path: Path) -> None:
    database = tmp_path / "cove.db"
    make_old_database(database)
    with sqlite3.connect(database) as connection:
        connection.execute("INSERT INTO api_keys VALUES ('key_old', 'hash', 'admin', 1.0)")

    engine = await open_engine(database)
    await engine.dispose()

    sync = create_engine(f"sqlite:///{database}")
    inspector = inspect(sync)
    for table, columns in ADDED.items():
        assert columns <= {column["name"] for column in inspector.get_columns(table)}, table
    assert "ix_sandboxes_tenant" in {index["name"] for index in inspector.get_indexes("sandboxes")}
    assert {"tokens", "audit"} <= set(inspector.get_table_names())
    sync.dispose()
    with sqlite3.connect(database) as connection:
        row = connection.execute("SELECT id, admin, quotas, revoked_at FROM api_keys").fetchone()
    assert row == ("key_old", 0, None, None)  # the server's start makes the admin key's row the admin's


async def test_a_current_database_is_left_as_it_is(tmp_path: Path) -> None:
    engine = await open_engine(tmp_path / "cove.db")
    async with engine.begin() as connection:
        assert await connection.run_sync(add_missing, metadata) == []
    await engine.dispose()


def test_a_column_that_cannot_be_added_in_place_is_refused_by_name(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'cove.db'}")
    before, after = MetaData(), MetaData()
    Table("things", before, Column("id", String, primary_key=True))
    Table("things", after, Column("id", String, primary_key=True), Column("count", Integer, nullable=False))
    before.create_all(engine)
    with engine.begin() as connection, pytest.raises(SchemaChangeRefused, match=r"things\.count"):
        add_missing(connection, after)
    engine.dispose()


def test_an_existing_home_keeps_working_and_its_sandboxes_are_the_admins(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    make_old_database(home / "cove.db")
    admin_key = new_key()
    (home / "admin_key").write_text(admin_key + "\n")
    now = time.time()
    with sqlite3.connect(home / "cove.db") as connection:
        connection.execute("INSERT INTO api_keys VALUES ('key_before', ?, 'admin', ?)", (hash_key(admin_key), now))
        connection.execute(
            "INSERT INTO sandboxes (id, state, stop_reason, created_at, updated_at, last_active_at, uid, spec, "
            "enforced, labels) VALUES ('sbx_0123456789abcdef', 'stopped', 'killed', ?, ?, ?, 1, '{}', '{}', '{}')",
            (now, now, now),
        )
    server = CoveServer(home, extra_env={"COVE_POOL_SIZE": "0"})
    server.start()
    try:
        with server.http() as admin:
            sandboxes = admin.get("/v1/sandboxes", params={"state": "stopped"}).json()["sandboxes"]
            assert [(s["id"], s["tenant_id"]) for s in sandboxes] == [("sbx_0123456789abcdef", "key_before")]
            keys = admin.get("/v1/keys").json()["keys"]
            assert [(k["id"], k["admin"]) for k in keys] == [("key_before", True)]
            tenant = admin.post("/v1/keys", json={"name": "tenant"}).json()["key"]
        with server.http(api_key=tenant) as client:
            assert client.get("/v1/sandboxes", params={"state": "stopped"}).json()["sandboxes"] == []
            assert client.get("/v1/sandboxes/sbx_0123456789abcdef").status_code == 404
    finally:
        server.kill(signal.SIGTERM)
    assert "Traceback" not in server.log_path.read_text()
