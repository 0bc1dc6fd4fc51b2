"""Ctrl-C from the terminal: a real SIGINT to a real ``cove`` process. A command's process gets the interrupt;
an agent session goes on; either way the CLI says how to find it again."""

from __future__ import annotations

import json
import signal

from tests.cli.conftest import cove, started
from tests.conftest import CoveServer


def test_ctrl_c_reaches_the_command(server: CoveServer, sandbox_id: str) -> None:
    command = started(
        server, "sandbox", "exec", sandbox_id, "trap 'echo caught; exit 7' INT; echo ready; sleep 60 & wait"
    )
    assert command.stdout is not None and command.stdout.readline() == "ready\n"
    command.send_signal(signal.SIGINT)
    out, err = command.communicate(timeout=30)
    assert command.returncode == 7 and out == "caught\n"
    assert "Ctrl-C again to detach" in err


def test_a_second_ctrl_c_detaches_and_the_process_goes_on(server: CoveServer, sandbox_id: str) -> None:
    command = started(server, "sandbox", "exec", sandbox_id, "trap '' INT; echo ready; sleep 60; echo finished")
    assert command.stdout is not None and command.stdout.readline() == "ready\n"
    command.send_signal(signal.SIGINT)
    assert command.stderr is not None and "Ctrl-C again to detach" in command.stderr.readline()
    command.send_signal(signal.SIGINT)
    _out, err = command.communicate(timeout=30)
    assert command.returncode == 130
    [process] = json.loads(cove(server, "sandbox", "ps", sandbox_id, "--json").stdout)
    assert process["running"]
    assert f"cove sandbox attach {sandbox_id} {process['process_id']}" in err
    assert f"cove sandbox kill-process {sandbox_id} {process['process_id']}" in err


def test_ctrl_c_while_an_agent_works_leaves_the_session_running(server: CoveServer, sandbox_id: str) -> None:
    command = started(server, "agent", "start", sandbox_id, "@slow 30 a long answer, streamed slowly")
    assert command.stdout is not None
    first = command.stdout.readline()
    assert first.startswith("session ses_")  # the id comes first, before any event
    session_id = first.split()[1]
    while "▶ turn 1" not in command.stdout.readline():
        pass
    command.send_signal(signal.SIGINT)
    _out, err = command.communicate(timeout=30)
    assert command.returncode == 130
    assert f"session {session_id} keeps running" in err
    assert f"cove agent attach {sandbox_id} {session_id}" in err and f"cove agent kill {sandbox_id} {session_id}" in err
    info = json.loads(cove(server, "agent", "info", sandbox_id, session_id, "--json").stdout)
    assert info["status"] == "running"
    cove(server, "agent", "kill", sandbox_id, session_id)
