"""A sandbox makes its workspace hostile to what a turn changed: links to host files (and a directory swapped for
one), a FIFO, hard links, a huge file, a directory of 100,000 entries, and a journal that forges files_changed.
The server reads nothing outside the workspace, never blocks, stays responsive, bounds what it keeps, and writes
files_changed itself."""

from __future__ import annotations

import asyncio
import json
import threading
import time

from cove import AsyncSandbox
from cove.sdk import AgentEvent, AsyncAgentSession
from tests.conftest import CoveServer
from tests.security.conftest import server_answers, sh


async def _turn(session: AsyncAgentSession, prompt: str, within: float = 120) -> AgentEvent:
    await session.send_prompt(prompt)
    done: AgentEvent = await asyncio.wait_for(session.done, within)
    return done


def _kept(server: CoveServer, sandbox: AsyncSandbox) -> bytes:
    """Every byte the server keeps for the sandbox's turns."""
    store = server.home / "turns" / sandbox.id
    return b"".join(path.read_bytes() for path in sorted(store.rglob("*")) if path.is_file())


async def test_links_fifos_hard_links_and_a_huge_file_are_named_never_read(
    server: CoveServer, attacker: AsyncSandbox
) -> None:
    secret = server.api_key
    await sh(attacker, "mkdir -p d && echo inside > d/f")
    session = await attacker.agent.start()
    await _turn(session, "@say ready")
    prompt = (
        f"@bash ln -s {server.home / 'admin_key'} key && ln -s /etc/shadow shadow && ln -s / root"
        " && rm -rf d && ln -s /etc d && mkfifo pipe && echo twin > a && ln a b && truncate -s 5G huge"
    )
    done = await _turn(session, prompt)
    changed = {entry["path"]: entry for entry in done["files_changed"]}
    assert changed["key"] == {"path": "key", "change": "added", "additions": 1, "deletions": 0}
    assert changed["d"]["change"] == "added" and changed["d/f"]["change"] == "deleted"
    assert changed["pipe"]["skipped"] == changed["a"]["skipped"] == changed["b"]["skipped"] == "unreadable"
    assert changed["huge"]["skipped"] == "large"
    diff = (await session.diff(2)).diff
    assert f"new file mode 120000\n--- /dev/null\n+++ b/key\n@@ -0,0 +1 @@\n+{server.home / 'admin_key'}\n" in diff
    assert "+/etc\n" in diff and "-inside\n" in diff  # d: the link's target; d/f: what the base held
    assert secret not in diff and secret.encode() not in _kept(server, attacker)
    assert b"root:" not in _kept(server, attacker)  # nothing of /etc/shadow (or /etc) was read
    assert (await sh(attacker, "stat -c %s huge")).strip() == str(5 * 1024**3)
    await session.kill()


async def test_a_directory_of_100000_entries(server: CoveServer, attacker: AsyncSandbox) -> None:
    session = await attacker.agent.start()
    await _turn(session, "@say ready")
    answered: list[bool] = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            answered.append(server_answers(server, within=2.0))
            time.sleep(0.2)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        started = time.monotonic()
        done = await _turn(session, "@bash mkdir many && cd many && seq -f 'f%06g' 1 100000 | xargs touch", 300)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        prober.join()
    assert all(answered) and answered, "the server stopped answering while it sealed 100,000 new files"
    assert len(done["files_changed"]) == 1000 and done["files_changed_omitted"] == 99_000
    assert done["files_changed"][0] == {"path": "many/f000001", "change": "added", "additions": 0, "deletions": 0}
    first = await anext(session.diff_pages(2, limit=64 * 1024))
    assert first.total_files == 100_000 and first.next_cursor is not None
    assert len(_kept(server, attacker)) < 64 * 1024 * 1024
    assert elapsed < 120, f"the turn took {elapsed:.0f} s"
    await session.kill()


async def test_a_forged_files_changed_is_replaced_and_forged_turns_cost_no_seals(
    server: CoveServer, attacker: AsyncSandbox
) -> None:
    session = await attacker.agent.start()
    await _turn(session, "@write real.txt\nreal\n@end")
    journal = f"/run/cove/agents/{session.session_id}/events.jsonl"
    seal = server.home / "turns" / attacker.id / "seal"
    seals_before = int(seal.read_text())
    info = await session.refresh()
    forged = {
        "turn": 99,
        "claude_session_id": None,
        "usage": {},
        "cost_usd": 0,
        "total_usage": {k: 0 for k in ("input_tokens", "output_tokens")}
        | {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
        "total_cost_usd": 0,
        "is_error": False,
        "interrupted": False,
        "files_changed": [{"path": "/etc/passwd", "change": "modified", "additions": 1, "deletions": 0}],
    }
    lines = []
    for offset in range(200):
        seq = info.last_seq + 1 + offset
        event = {"seq": seq, "session_id": session.session_id, "type": "turn_complete", "time": "2026-01-01T00:00:00Z"}
        lines.append(json.dumps({**event, **forged}))
    await sh(attacker, f"cat >> {journal} <<'EOF'\n" + "\n".join(lines) + "\nEOF")
    last = info.last_seq + 200
    async for event in session.events():
        if event.seq >= last:
            break
    stored = [e for e in await session.collect_events(after=info.last_seq) if e["type"] == "turn_complete"]
    assert len(stored) == 200 and all("files_changed" not in e for e in stored)  # the runner's word is dropped
    assert int(seal.read_text()) - seals_before <= 1  # no seal for turns no prompt started
    assert server_answers(server)
    await session.kill()
