"""The ``cove`` CLI against a real server: tables for people, JSON for scripts, exit codes passed through."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import CoveServer


def cove(server: CoveServer, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cove", *args],
        env=server.env,
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )


def test_sandbox_and_files_commands(server: CoveServer, tmp_path: Path) -> None:
    sandbox_id = cove(server, "sandbox", "create", "--label", "cli=yes", "--memory-mb", "256").stdout.strip()
    try:
        assert sandbox_id.startswith("sbx_")
        table = cove(server, "sandbox", "ls", "--label", "cli=yes").stdout
        assert sandbox_id in table and "running" in table and "STATE" in table
        listed = json.loads(cove(server, "sandbox", "ls", "--label", "cli=yes", "--json").stdout)
        assert [s["id"] for s in listed] == [sandbox_id]

        run = cove(server, "sandbox", "exec", sandbox_id, "echo out; echo err >&2; exit 4", check=False)
        assert (run.returncode, run.stdout, run.stderr) == (4, "out\n", "err\n")
        result = json.loads(cove(server, "sandbox", "exec", sandbox_id, "--json", "--", "uname", "-s").stdout)
        assert result["stdout"] == "Linux\n" and result["exit_code"] == 0

        local = tmp_path / "up.txt"
        local.write_text("payload\n")
        cove(server, "files", "put", sandbox_id, str(local), "dir/up.txt")
        assert "up.txt" in cove(server, "files", "ls", sandbox_id, "dir").stdout
        cove(server, "files", "get", sandbox_id, "dir/up.txt", str(tmp_path / "down.txt"))
        assert (tmp_path / "down.txt").read_text() == "payload\n"

        failed = cove(server, "files", "get", sandbox_id, "/etc/passwd", str(tmp_path / "x"), check=False)
        assert failed.returncode == 1 and "path_outside_sandbox" in failed.stderr
    finally:
        killed = cove(server, "sandbox", "kill", sandbox_id).stdout
    assert "stopped" in killed
