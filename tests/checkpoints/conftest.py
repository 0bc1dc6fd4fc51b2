"""Every checkpoint test runs against each storage driver: overlayfs (the suite's usual server, on the work disk)
and btrfs (a server whose ``COVE_HOME`` is on a loopback btrfs made for it)."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from cove.testing import loopback_btrfs
from tests.conftest import CoveServer

DRIVERS = ("overlayfs", "btrfs")


@pytest.fixture(scope="session", params=DRIVERS)
def storage_driver(request: pytest.FixtureRequest) -> str:
    driver: str = request.param
    return driver


@contextlib.contextmanager
def home_for(driver: str, directory: Path) -> Iterator[Path]:
    """A ``COVE_HOME`` (not yet made) where the server will choose ``driver``."""
    if driver == "btrfs":
        with loopback_btrfs(directory) as mount_point:
            yield mount_point / "home"
    else:
        yield directory / "home"


@pytest.fixture(scope="session")
def server(server: CoveServer, storage_driver: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CoveServer]:
    if storage_driver == "overlayfs":
        yield server  # the suite's own server: its home is on the work disk
        return
    with home_for(storage_driver, tmp_path_factory.mktemp(storage_driver)) as home:
        instance = CoveServer(home)
        instance.start()
        try:
            yield instance
        finally:
            instance.kill_all_sandboxes()
            instance.kill(signal.SIGTERM)
