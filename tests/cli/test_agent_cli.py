"""``cove agent``: readable events for people, raw JSON events for scripts."""

from __future__ import annotations

import json

from tests.cli.test_cli import cove
from tests.conftest import CoveServer


def test_agent_commands(server: CoveServer) -> None:
    sandbox_id = cove(server, "sandbox", "create").stdout.strip()
    try:
        started = cove(server, "agent", "start", sandbox_id, "@bash echo cli-$((20+22))\n@say all good").stdout
        assert "▶ turn 1" in started and "cli-42" in started and "✔ turn 1 complete" in started
        session_id = started.split("session ")[-1].split()[0]
        assert session_id.startswith("ses_")

        raw = cove(server, "agent", "prompt", sandbox_id, session_id, "@say second turn", "--json").stdout
        events = [json.loads(line) for line in raw.splitlines()]
        assert events[0]["type"] == "turn_started" and events[-1]["type"] == "turn_complete"
        assert events[-1]["turn"] == 2

        assert "nothing was running" in cove(server, "agent", "interrupt", sandbox_id, session_id).stdout
        configured = json.loads(cove(server, "agent", "configure", sandbox_id, session_id, "--model", "m2").stdout)
        assert configured["model"] == "m2"
        listed = json.loads(cove(server, "agent", "ls", "--json").stdout)
        assert any(s["session_id"] == session_id and s["turns"] == 2 for s in listed)
        assert session_id[:12] in cove(server, "agent", "ls", sandbox_id).stdout

        assert "exited" in cove(server, "agent", "kill", sandbox_id, session_id).stdout
        replay = [
            json.loads(line)
            for line in cove(server, "agent", "attach", sandbox_id, session_id, "--json").stdout.splitlines()
        ]
        assert [e["seq"] for e in replay] == list(range(1, len(replay) + 1)) and replay[-1]["type"] == "exit"
        refused = cove(server, "agent", "prompt", sandbox_id, session_id, "hello?", check=False)
        assert refused.returncode == 1 and "session_exited" in refused.stderr
    finally:
        cove(server, "sandbox", "kill", sandbox_id)
