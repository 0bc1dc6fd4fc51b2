"""The ``cove`` CLI against a real server: tables for people, JSON for scripts, exit codes passed through, and
errors that say what to do."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from tests.cli.conftest import cove, started
from tests.conftest import CoveServer, free_port


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
        piped = cove(server, "sandbox", "exec", sandbox_id, "--stdin", "--", "wc", "-l", stdin="a\nb\nc\n")
        assert piped.stdout.strip() == "3"

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


def test_a_failed_download_leaves_no_file(server: CoveServer, sandbox_id: str, tmp_path: Path) -> None:
    for path in ("missing.txt", "/etc/passwd", "/workspace"):
        failed = cove(server, "files", "get", sandbox_id, path, str(tmp_path / "target"), check=False)
        assert failed.returncode == 1 and failed.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_tables_keep_ids_whole_at_80_columns_and_show_limit_values(server: CoveServer) -> None:
    long_label = "note=" + "x" * 120
    created = cove(
        server, "sandbox", "create", "--label", long_label, "--label", "wide=yes", "--memory-mb", "512", "--pids", "128"
    )
    sandbox_id = created.stdout.strip()
    narrow = cove(server, "sandbox", "ls", "--label", "wide=yes", env={"COLUMNS": "80"}).stdout
    assert all(len(line) <= 80 for line in narrow.splitlines()), narrow
    [row] = [line for line in narrow.splitlines() if sandbox_id in line]
    assert row.split()[0] == sandbox_id
    assert "mem 512M, 128 pids" in row  # the values, not how they are enforced
    session_id = cove(server, "agent", "start", sandbox_id, "--no-follow").stdout.strip()
    sessions = cove(server, "agent", "ls", sandbox_id, env={"COLUMNS": "80"}).stdout
    assert f"{session_id}  {sandbox_id}" in sessions
    cove(server, "sandbox", "kill", sandbox_id)


def test_ls_hides_stopped_sandboxes_unless_asked(server: CoveServer) -> None:
    stopped = cove(server, "sandbox", "create", "--label", "hide=me").stdout.strip()
    cove(server, "sandbox", "kill", stopped)
    running = cove(server, "sandbox", "create", "--label", "hide=me").stdout.strip()
    listed = cove(server, "sandbox", "ls", "--label", "hide=me")
    assert running in listed.stdout and stopped not in listed.stdout
    assert "1 stopped sandbox not shown: --all shows them" in listed.stderr
    assert stopped in cove(server, "sandbox", "ls", "--label", "hide=me", "--all").stdout
    assert stopped in cove(server, "sandbox", "ls", "--label", "hide=me", "--state", "stopped").stdout
    cove(server, "sandbox", "kill", running)


def test_info_ps_attach_and_kill_process(server: CoveServer, sandbox_id: str) -> None:
    info = cove(server, "sandbox", "info", sandbox_id).stdout
    assert re.search(rf"^sandbox +{sandbox_id}$", info, re.M) and re.search(r"^labels +cli=yes$", info, re.M)
    assert json.loads(cove(server, "sandbox", "info", sandbox_id, "--json").stdout)["id"] == sandbox_id

    cove(server, "sandbox", "exec", sandbox_id, "true")
    script = "for i in 1 2 3; do echo line-$i; done; exec sleep 300"
    follower = started(server, "sandbox", "exec", sandbox_id, script)
    try:
        assert follower.stdout is not None and follower.stdout.readline() == "line-1\n"
        [sleeper] = json.loads(cove(server, "sandbox", "ps", sandbox_id, "--json").stdout)
        assert sleeper["running"] and sleeper["process_id"].startswith("p")
        assert sleeper["process_id"] in cove(server, "sandbox", "ps", sandbox_id).stdout
        everything = cove(server, "sandbox", "ps", sandbox_id, "--all").stdout
        assert "exit 0" in everything and "running" in everything

        # Attach by Cove's process id or by the Linux PID: the output from the start, then live.
        by_pid = started(server, "sandbox", "attach", sandbox_id, str(sleeper["pid"]))
        assert by_pid.stdout is not None
        assert [by_pid.stdout.readline() for _ in range(3)] == ["line-1\n", "line-2\n", "line-3\n"]
        killed = cove(server, "sandbox", "kill-process", sandbox_id, sleeper["process_id"], "--signal", "SIGKILL")
        assert killed.stdout == f"sent SIGKILL to {sleeper['process_id']}\n"
        assert by_pid.wait(30) == 137 and follower.wait(30) == 137  # as a shell reports a SIGKILL
    finally:
        follower.kill()
    missing = cove(server, "sandbox", "attach", sandbox_id, "99999", check=False)
    assert missing.returncode == 1 and "no process with PID 99999" in missing.stderr


def test_large_transfers_show_progress_and_small_ones_do_not(
    server: CoveServer, sandbox_id: str, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(6 * 1024 * 1024))
    put = cove(server, "files", "put", sandbox_id, str(big), "big.bin")
    assert "put big.bin" in put.stderr and "6.3/6.3 MB" in put.stderr
    get = cove(server, "files", "get", sandbox_id, "big.bin", str(tmp_path / "back.bin"))
    assert "get big.bin" in get.stderr and (tmp_path / "back.bin").read_bytes() == big.read_bytes()
    small = tmp_path / "small.txt"
    small.write_text("small\n")
    quiet = cove(server, "files", "put", sandbox_id, str(small), "small.txt")
    assert quiet.stderr == "" and json.loads(cove(server, "files", "put", sandbox_id, str(small), "s", "--json").stdout)


def test_validation_errors_name_the_commands_options(server: CoveServer) -> None:
    refused = cove(server, "sandbox", "create", "--memory-mb", "1", check=False)
    assert refused.returncode == 1
    assert "--memory-mb: Input should be greater than or equal to 16" in refused.stderr
    assert "limits" not in refused.stderr


def test_an_unreachable_server_is_explained(server: CoveServer) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    failed = cove(server, "sandbox", "ls", check=False, env={"COVE_URL": url})
    assert failed.returncode == 1
    assert f"cannot reach the Cove server at {url}" in failed.stderr and "start one with `cove serve`" in failed.stderr
    assert "Traceback" not in failed.stderr
