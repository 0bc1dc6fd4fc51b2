"""``cove checkpoint`` and ``cove sandbox create --from-checkpoint`` against a real server."""

from __future__ import annotations

import json
import subprocess

from tests.cli.test_cli import cove as run_cove
from tests.conftest import CoveServer


def cove(server: CoveServer, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The CLI helper, with the command's stderr in the failure message."""
    result = run_cove(server, *args, check=False)
    assert not check or result.returncode == 0, f"cove {' '.join(args)}: {result.stderr}"
    return result


def shell(server: CoveServer, sandbox_id: str, line: str) -> str:
    # --json runs through exec.run: the streaming path races a fast command's exit when closing stdin.
    result = json.loads(cove(server, "sandbox", "exec", sandbox_id, "--json", line).stdout)
    assert result["exit_code"] == 0, result["stderr"]
    return str(result["stdout"])


def test_checkpoint_commands(server: CoveServer) -> None:
    origin = cove(server, "sandbox", "create").stdout.strip()
    fork = ""
    try:
        shell(server, origin, "echo from-origin > note")
        checkpoint = cove(server, "checkpoint", "create", origin, "--name", "cli").stdout.strip()
        assert checkpoint.startswith("ckpt_")
        assert checkpoint in cove(server, "checkpoint", "ls", origin).stdout
        [listed] = json.loads(cove(server, "checkpoint", "ls", origin, "--json").stdout)
        assert (listed["id"], listed["name"]) == (checkpoint, "cli")

        fork = cove(server, "sandbox", "create", "--from-checkpoint", checkpoint).stdout.strip()
        assert shell(server, fork, "cat note") == "from-origin\n"
        shell(server, origin, "echo changed > note")
        assert "running" in cove(server, "checkpoint", "restore", origin, checkpoint).stdout
        assert shell(server, origin, "cat note") == "from-origin\n"

        assert "deleted" in cove(server, "checkpoint", "rm", origin, checkpoint).stdout
        missing = cove(server, "checkpoint", "rm", origin, checkpoint, check=False)
        assert missing.returncode == 1 and "checkpoint_not_found" in missing.stderr
    finally:
        for sandbox in filter(None, (origin, fork)):
            cove(server, "sandbox", "kill", sandbox)
