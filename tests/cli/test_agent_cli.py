"""``cove agent``: readable events for people, raw JSON events for scripts."""

from __future__ import annotations

import json
import re

from cove import Sandbox
from tests.cli.conftest import cove
from tests.conftest import CoveServer


def test_agent_commands(server: CoveServer, sandbox_id: str) -> None:
    started = cove(server, "agent", "start", sandbox_id, "@bash echo cli-$((20+22))\n@say all good")
    first, *events = started.stdout.splitlines()
    assert first.startswith("session ses_") and "keeps running" in first  # the id before anything else
    session_id = first.split()[1]
    text = "\n".join(events)
    assert "▶ turn 1" in text and "cli-42" in text and "✔ turn 1 complete" in text
    assert "(simulated)" in text  # the simulator's costs are not real money
    assert "continue it in a new session with --resume" in started.stderr

    raw = cove(server, "agent", "prompt", sandbox_id, session_id, "@say second turn", "--json").stdout
    events_json = [json.loads(line) for line in raw.splitlines()]
    assert events_json[0]["type"] == "turn_started" and events_json[-1]["type"] == "turn_complete"
    assert events_json[-1]["turn"] == 2

    assert "nothing was running" in cove(server, "agent", "interrupt", sandbox_id, session_id).stdout
    configured = cove(server, "agent", "configure", sandbox_id, session_id, "--model", "m2", "--max-turns", "3")
    assert re.search(r"^model +m2$", configured.stdout, re.M) and re.search(r"^max_turns +3$", configured.stdout, re.M)
    as_json = json.loads(cove(server, "agent", "configure", sandbox_id, session_id, "--model", "m3", "--json").stdout)
    assert as_json["config"]["model"] == "m3"
    listed = json.loads(cove(server, "agent", "ls", "--json").stdout)
    assert any(s["session_id"] == session_id and s["turns"] == 2 for s in listed)
    assert session_id in cove(server, "agent", "ls", sandbox_id).stdout
    info = cove(server, "agent", "info", sandbox_id, session_id).stdout
    assert re.search(r"^status +idle$", info, re.M) and re.search(r"^model +m3$", info, re.M)

    killed = cove(server, "agent", "kill", sandbox_id, session_id)
    assert killed.stdout == f"{session_id} exited (exit code 0)\n"
    replay = [
        json.loads(line)
        for line in cove(server, "agent", "attach", sandbox_id, session_id, "--json").stdout.splitlines()
    ]
    assert [e["seq"] for e in replay] == list(range(1, len(replay) + 1)) and replay[-1]["type"] == "exit"
    # From the last seq of an exited session there is nothing to follow: attach says so and returns.
    after = cove(server, "agent", "attach", sandbox_id, session_id, "--after", str(replay[-1]["seq"]))
    assert after.stdout == "" and f"no events after seq {replay[-1]['seq']}" in after.stderr
    assert "exited" in after.stderr
    refused = cove(server, "agent", "prompt", sandbox_id, session_id, "hello?", check=False)
    assert refused.returncode == 1 and "session_exited" in refused.stderr


def test_start_takes_every_setting_of_configure_and_names_them_in_errors(server: CoveServer, sandbox_id: str) -> None:
    settings = [
        *("--model", "sim-model", "--system-prompt", "You are terse.", "--permission-mode", "default"),
        *("--allowed-tool", "Bash", "--allowed-tool", "Read", "--disallowed-tool", "WebFetch"),
        *("--max-turns", "4", "--cwd", "/tmp", "--mcp-servers", "{}"),
    ]
    started = cove(server, "agent", "start", sandbox_id, "--no-follow", "--json", *settings)
    config = json.loads(started.stdout)["config"]
    assert config["model"] == "sim-model" and config["system_prompt"] == "You are terse."
    assert config["allowed_tools"] == ["Bash", "Read"] and config["disallowed_tools"] == ["WebFetch"]
    assert (config["permission_mode"], config["max_turns"], config["cwd"]) == ("default", 4, "/tmp")

    refused = cove(server, "agent", "start", sandbox_id, "--max-turns", "0", "--permission-mode", "x", check=False)
    assert refused.returncode == 1
    assert "--max-turns: Input should be greater than or equal to 1" in refused.stderr
    assert "--permission-mode: Input should be" in refused.stderr
    bad_json = cove(server, "agent", "start", sandbox_id, "--mcp-servers", "{nope", check=False)
    assert bad_json.returncode == 2 and "--mcp-servers" in bad_json.stderr


def test_a_turn_that_fails_or_never_runs_exits_1(server: CoveServer, sandbox_id: str) -> None:
    no_cwd = cove(server, "agent", "start", sandbox_id, "@say hi", "--cwd", "/workspace/missing", check=False)
    assert no_cwd.returncode == 1 and "✖ start_failed: cwd '/workspace/missing' is not a directory" in no_cwd.stdout
    assert "the session exited (exit code 1) before the turn completed" in no_cwd.stderr
    failed = cove(server, "agent", "start", sandbox_id, "@fail 400 invalid_request_error no good", check=False)
    assert failed.returncode == 1 and "✔ turn 1 failed" in failed.stdout and "the turn failed" in failed.stderr


def test_start_streams_text_and_asks_for_each_permission(server: CoveServer, sandbox_id: str) -> None:
    prompt = "@write a.txt\nA\n@end\n@write b.txt\nB\n@end\n@say both asked about"
    started = cove(server, "agent", "start", sandbox_id, prompt, "--ask", stdin="maybe\ny\nn\n")
    out = started.stdout
    assert "? Write: /workspace/a.txt — waiting for approval (perm_" in out
    assert re.search(r"✔ allowed by key_\w+: perm_", out) and re.search(r"✖ denied by key_\w+: perm_", out)
    assert out.count("allow Write? [y]es, [n]o, [a]lways:") == 3  # "maybe" is asked again
    # The reply streamed as it came, and is not printed a second time when the whole message arrives.
    assert out.count("claude: both asked about") == 1 and out.count("both asked about") == 2  # reply and prompt
    files = cove(server, "sandbox", "exec", sandbox_id, "ls /workspace").stdout.split()
    assert "a.txt" in files and "b.txt" not in files


def test_approve_and_deny_answer_from_another_terminal(server: CoveServer, sandbox_id: str) -> None:
    session_id = cove(
        server, "agent", "start", sandbox_id, "@write c.txt\nC\n@end", "--permission-mode", "default", "--no-follow"
    ).stdout.strip()
    session = Sandbox.connect(sandbox_id, url=server.url, api_key=server.api_key).agent.attach(session_id)
    request_id = next(e["request_id"] for e in session.events() if e.type == "permission_requested")
    denied = cove(server, "agent", "deny", sandbox_id, session_id, request_id, "--message", "not c.txt")
    assert denied.stdout == f"denied {request_id}\n"
    again = cove(server, "agent", "approve", sandbox_id, session_id, request_id, check=False)
    assert again.returncode == 1 and "already_resolved" in again.stderr
    missing = cove(server, "agent", "approve", sandbox_id, session_id, "perm_0000000000000000", "--json", check=False)
    assert missing.returncode == 1 and "permission_not_found" in missing.stderr
    session.wait(60)
    resolved = next(e for e in session.collect_events() if e.type == "permission_resolved")
    assert (resolved["decision"], resolved["message"]) == ("deny", "not c.txt")
    session.kill()


def test_agent_diff(server: CoveServer, sandbox_id: str) -> None:
    sandbox = Sandbox.connect(sandbox_id, url=server.url, api_key=server.api_key)
    sandbox.files.write("greeting.txt", "hello\n")
    started = cove(server, "agent", "start", sandbox_id, "@bash echo world >> greeting.txt && echo new > added.txt")
    session_id = started.stdout.splitlines()[0].split()[1]
    assert "✔ turn 1 complete" in started.stdout and "2 files changed (+2 -0)" in started.stdout

    patch = cove(server, "agent", "diff", sandbox_id, session_id).stdout  # the last turn: 1
    assert patch == cove(server, "agent", "diff", sandbox_id, session_id, "1").stdout
    assert "--- /dev/null\n+++ b/added.txt\n@@ -0,0 +1 @@\n+new\n" in patch
    assert "--- a/greeting.txt\n+++ b/greeting.txt\n@@ -1 +1,2 @@\n hello\n+world\n" in patch
    checked = sandbox.exec.run(
        f"cd /tmp && git init -q t && cd t && printf 'hello\\n' > greeting.txt && git apply -v <<'EOF'\n{patch}EOF"
    )
    assert checked.exit_code == 0, checked.stderr  # a patch git takes as it is

    stat = cove(server, "agent", "diff", sandbox_id, session_id, "--stat").stdout
    assert re.search(r"^A +added\.txt +1 +0", stat, re.M) and re.search(r"^M +greeting\.txt +1 +0", stat, re.M)
    as_json = json.loads(cove(server, "agent", "diff", sandbox_id, session_id, "1", "--json").stdout)
    assert [f["path"] for f in as_json["files"]] == ["added.txt", "greeting.txt"] and as_json["total_files"] == 2

    cove(server, "agent", "prompt", sandbox_id, session_id, "@say nothing")
    assert "the turn changed nothing" in cove(server, "agent", "diff", sandbox_id, session_id).stderr
    missing = cove(server, "agent", "diff", sandbox_id, session_id, "9", check=False)
    assert missing.returncode != 0 and "turn_not_found" in missing.stderr + missing.stdout
    cove(server, "agent", "kill", sandbox_id, session_id)
