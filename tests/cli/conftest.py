"""The real ``cove`` CLI, run as a user runs it, against the test server; a sandbox per test that wants one."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import CoveServer


def cove(
    server: CoveServer, *args: str, check: bool = True, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI to its end, with the server's URL in the environment (never this test's stdin)."""
    return subprocess.run(
        [sys.executable, "-m", "cove", *args],
        env={**server.env, **(env or {})},
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )


def started(server: CoveServer, *args: str) -> subprocess.Popen[str]:
    """The CLI running, its output readable line by line as it comes (for Ctrl-C and following)."""
    return subprocess.Popen(
        [sys.executable, "-m", "cove", *args],
        env=server.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def sandbox_id(server: CoveServer) -> Iterator[str]:
    """A sandbox made with ``cove sandbox create --label cli=yes``, killed after the test."""
    created = cove(server, "sandbox", "create", "--label", "cli=yes").stdout.strip()
    yield created
    cove(server, "sandbox", "kill", created, check=False)
