"""Each server's slice of the host's network (``runtime.network_slot``) does not outlive what needs it: a server
stopping with no sandbox left takes its nftables table with it, and one starting removes the tables of slots that
no server holds and no home's sandbox needs (a suite's killed servers leave such slots)."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from pathlib import Path

from cove.runtime.network_slot import LOCK_DIR, SLOTS
from tests.conftest import serving


def tables() -> set[str]:
    listing = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1] for line in listing.splitlines() if line.startswith("table inet ")}


def table_of(home: Path) -> str:
    return f"cove_{json.loads((home / 'network.json').read_text())['slot']:02x}"


def test_a_server_stopping_with_no_sandbox_removes_its_table(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with serving(home) as server:
        with server.http() as client:
            assert client.post("/v1/sandboxes", json={"network": "egress"}).status_code == 201
        assert table_of(home) in tables()
    assert table_of(home) not in tables()


def test_a_starting_server_removes_the_tables_of_abandoned_slots(tmp_path: Path) -> None:
    """An abandoned slot as a killed server whose home was deleted leaves it: a free lock naming a home that is
    gone, and the slot's table still in the kernel."""
    LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
    for index in reversed(range(SLOTS)):
        lock = os.open(LOCK_DIR / f"slot-{index}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            continue
        break
    table = f"cove_{index:02x}"
    try:
        os.ftruncate(lock, 0)
        os.pwrite(lock, str(tmp_path / "gone").encode(), 0)
        subprocess.run(["nft", "add", "table", "inet", table], check=True)
    finally:
        os.close(lock)
    with serving(tmp_path / "home"):
        # The server removes it in the background after it started: watch the kernel, with a deadline.
        deadline = time.monotonic() + 120
        while table in tables():
            assert time.monotonic() < deadline, f"{table} is still there"
            time.sleep(0.2)
