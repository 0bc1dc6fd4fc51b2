"""What a turn changed, with the real Claude Code CLI on the model simulator: files_changed on turn_complete and
the turn's diff — files added, edited, deleted and renamed (a binary one too), a turn that touched nothing, a
diff in pages, changes made between turns (no turn's), queued turns (each its own), a server restart mid-session,
and the refusals."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from cove import AsyncSandbox, InvalidRequest, SessionNotFound, TurnNotFound
from cove.sdk import AgentEvent
from cove.services.turns import read_edges
from tests.agent.conftest import validate_events
from tests.conftest import CoveServer, serving


async def _turn(session: object, prompt: str | None = None) -> AgentEvent:
    """Send ``prompt`` (if any) and return the turn's turn_complete, checked against the schema."""
    if prompt is not None:
        await session.send_prompt(prompt)  # type: ignore[attr-defined]
    done: AgentEvent = await asyncio.wait_for(session.done, 60)  # type: ignore[attr-defined]
    validate_events([done])
    return done


async def test_added_edited_deleted_renamed_and_binary_files(sandbox: AsyncSandbox) -> None:
    await sandbox.files.write("src/app.py", "def main():\n    return 1\n\n\nprint(main())\n")
    await sandbox.files.write("README.md", "# old\n")
    await sandbox.files.write("notes/draft.txt", "a draft that moves\n")
    prompt = (
        "@write src/util.py\ndef helper():\n    return 2\n@end\n"
        "@bash sed -i 's/return 1/return 41 + 1/' src/app.py && rm README.md && mv notes/draft.txt notes/final.txt"
        " && head -c 3000 /dev/urandom > logo.png"
    )
    session = await sandbox.agent.start(prompt=prompt)
    done = await _turn(session)
    assert done["files_changed"] == [
        {"path": "README.md", "change": "deleted", "additions": 0, "deletions": 1},
        {"path": "logo.png", "change": "added", "additions": 0, "deletions": 0, "skipped": "binary"},
        {"path": "notes/final.txt", "change": "renamed", "additions": 0, "deletions": 0, "old_path": "notes/draft.txt"},
        {"path": "src/app.py", "change": "modified", "additions": 1, "deletions": 1},
        {"path": "src/util.py", "change": "added", "additions": 2, "deletions": 0},
    ]
    changes = await session.diff()
    assert changes.turn == 1 and changes.total_files == 5 and changes.next_cursor is None
    assert [f.model_dump(exclude_none=True) for f in changes.files] == done["files_changed"]
    text = changes.diff
    deleted = "diff --git a/README.md b/README.md\ndeleted file mode 100644\n"
    assert deleted + "--- a/README.md\n+++ /dev/null\n@@ -1 +0,0 @@\n-# old\n" in text
    assert "Binary files /dev/null and b/logo.png differ\n" in text
    assert "rename from notes/draft.txt\nrename to notes/final.txt\n" in text
    assert "-    return 1\n+    return 41 + 1\n" in text
    assert "--- /dev/null\n+++ b/src/util.py\n@@ -0,0 +1,2 @@\n+def helper():\n+    return 2\n" in text

    # A later turn compares with what this one left, not with the start.
    done = await _turn(session, "@bash printf 'def helper():\\n    return 3\\n' > src/util.py")
    assert done["files_changed"] == [{"path": "src/util.py", "change": "modified", "additions": 1, "deletions": 1}]
    assert "-    return 2\n+    return 3\n" in (await session.diff(2)).diff
    assert (await session.diff(1)).diff == text  # kept as it was
    await session.kill()


async def test_a_turn_that_touched_nothing(sandbox: AsyncSandbox) -> None:
    await sandbox.files.write("kept.txt", "untouched\n")
    session = await sandbox.agent.start(prompt="@say nothing to change")
    assert (await _turn(session))["files_changed"] == []
    assert (await _turn(session, "@bash cat kept.txt"))["files_changed"] == []
    empty = await session.diff(2)
    assert (empty.files, empty.diff, empty.total_files) == ([], "", 0)
    await session.kill()


async def test_a_large_diff_comes_in_pages(server: CoveServer, sandbox: AsyncSandbox) -> None:
    session = await sandbox.agent.start(prompt="@bash seq 1 20000 > numbers.txt && seq 1 10 > small.txt")
    done = await _turn(session)
    assert done["files_changed"][0] == {"path": "numbers.txt", "change": "added", "additions": 20000, "deletions": 0}
    whole = (await session.diff()).diff
    url = f"{server.url}/v1/sandboxes/{sandbox.id}/agent/{session.session_id}/turns/1/diff"
    headers = {"Authorization": f"Bearer {server.api_key}"}
    pages, cursor = [], None
    async with httpx.AsyncClient(headers=headers) as http:
        while True:
            reply = (await http.get(url, params={"limit": 4096, **({"cursor": cursor} if cursor else {})})).json()
            assert len(reply["diff"].encode()) <= 4096 and reply["diff"].endswith("\n")
            pages.append(reply)
            cursor = reply["next_cursor"]
            if cursor is None:
                break
            assert cursor.split(":")[0] in ("0", "1")  # <file>:<line>, the file by its index in the list
        assert len(pages) > 20 and "".join(page["diff"] for page in pages) == whole
        assert [f["path"] for f in pages[0]["files"]] == ["numbers.txt"]
        assert pages[-1]["files"][-1]["path"] == "small.txt"  # with the end of numbers.txt before it
        assert all(page["total_files"] == 2 for page in pages)
        for bad in ("x", "1:", "99:0"):
            refused = await http.get(url, params={"cursor": bad})
            assert (refused.status_code, refused.json()["error"]["code"]) == (400, "invalid_request"), bad
        assert (await http.get(url, params={"limit": 10})).status_code == 422
    sync_pages = [page async for page in session.diff_pages(1, limit=100_000)]
    assert "".join(page.diff for page in sync_pages) == whole
    await session.kill()


async def test_unknown_turns_and_sessions(server: CoveServer, sandbox: AsyncSandbox) -> None:
    session = await sandbox.agent.start()
    with pytest.raises(TurnNotFound):  # no turn has completed
        await session.diff()
    await _turn(session, "@say one")
    with pytest.raises(TurnNotFound):
        await session.diff(2)
    headers = {"Authorization": f"Bearer {server.api_key}"}
    base = f"{server.url}/v1/sandboxes/{sandbox.id}/agent"
    async with httpx.AsyncClient(headers=headers) as http:
        missing = await http.get(f"{base}/{session.session_id}/turns/5/diff")
        assert (missing.status_code, missing.json()["error"]["code"]) == (404, "turn_not_found")
        nobody = await http.get(f"{base}/ses_0000000000000000/turns/1/diff")
        assert (nobody.status_code, nobody.json()["error"]["code"]) == (404, "session_not_found")
        assert (await http.get(f"{base}/{session.session_id}/turns/0/diff")).status_code == 422
    with pytest.raises(SessionNotFound):
        await (await sandbox.agent.session("ses_0000000000000000")).diff(1)
    with pytest.raises(InvalidRequest):
        await anext(session.diff_pages(1, limit=1))
    await session.kill()


async def test_what_changes_between_turns_is_no_turns_and_queued_turns_are_each_their_own(
    sandbox: AsyncSandbox,
) -> None:
    session = await sandbox.agent.start(prompt="@write first.txt\none\n@end")
    assert [f["path"] for f in (await _turn(session))["files_changed"]] == ["first.txt"]
    await sandbox.exec.run("echo by hand > between.txt")  # while the session is idle: no turn did this
    assert [f["path"] for f in (await _turn(session, "@write second.txt\ntwo\n@end"))["files_changed"]] == [
        "second.txt"
    ]

    # Queued: the second prompt waits behind a slow first one; each turn lists only what it wrote.
    await session.send_prompt("@write third.txt\nthree\n@end\n@slow 1 taking a moment")
    assert (await session.send_prompt("@write fourth.txt\nfour\n@end")).queued == 1
    await asyncio.wait_for(session.done, 60)
    completes = [event for event in await session.collect_events() if event["type"] == "turn_complete"]
    assert [[f["path"] for f in done["files_changed"]] for done in completes[2:]] == [["third.txt"], ["fourth.txt"]]
    await session.kill()


async def test_a_server_restart_between_turns_loses_nothing(tmp_path: Path) -> None:
    with serving(tmp_path / "home") as server:
        async with await AsyncSandbox.create(url=server.url, api_key=server.api_key) as sandbox:
            session = await sandbox.agent.start(prompt="@write kept.txt\nbefore the restart\n@end")
            first = await _turn(session)
            await session.close()
            server.kill()
            server.start()
            await sandbox.exec.run("echo idle > during-restart.txt")  # the first seal after a restart walks
            again = await sandbox.agent.attach(session.session_id, after=first.seq)
            done = await _turn(again, "@bash echo after >> kept.txt && rm during-restart.txt")
            assert done["files_changed"] == [
                {"path": "during-restart.txt", "change": "deleted", "additions": 0, "deletions": 1},
                {"path": "kept.txt", "change": "modified", "additions": 1, "deletions": 0},
            ]
            assert "+++ b/kept.txt\n@@ -1 +1,2 @@\n before the restart\n+after\n" in (await again.diff(2)).diff
            assert json.loads(json.dumps((await again.diff(1)).model_dump()))["files"][0]["path"] == "kept.txt"
            await again.kill()


def test_a_sessions_edges_are_its_logs_last_whole_line(tmp_path: Path) -> None:
    """A crash may cut the log's last line short: the edges are then the line before it."""
    log = tmp_path / "ses_x.jsonl"
    assert read_edges(log).next_start is None  # no log yet
    log.write_text(
        '{"next_start": 1, "starts": {}, "expected": 1}\n'
        '{"next_start": 1, "starts": {"1": 1}, "expected": 1}\n'
        '{"next_start": 3, "starts": {"1": 1}, "exp'
    )
    edges = read_edges(log)
    assert (edges.next_start, edges.starts, edges.expected) == (1, {1: 1}, 1)
