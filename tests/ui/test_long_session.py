"""A long session in the page: only the rows in view are drawn, the list follows new events at its end, stays
where the reader scrolled to, and jumps back to the end on request. (benchmarks/bench_inspector.py times it.)"""

from __future__ import annotations

import json
import time

from playwright.sync_api import Page, expect

from tests.conftest import CoveServer
from tests.ui.conftest import sign_in

TURNS = 400  # 5 events each


def grow(server: CoveServer, sandbox: str, session: str, turns: range) -> int:
    """Append whole turns to an idle session's journal, as its runner would write them; the last seq."""
    journal = server.session_journal(sandbox, session)
    seq = sum(1 for _ in journal.open())
    lines = []
    for turn in turns:
        message = f"msg_{turn}"
        for kind, fields in (
            ("turn_started", {"turn": turn, "prompt": f"prompt number {turn}"}),
            ("text_delta", {"message_id": message, "index": 0, "text": f"reply number {turn}"}),
            ("assistant", {"message_id": message, "content": [{"type": "text", "text": f"reply number {turn}"}]}),
            ("result", {"subtype": "success", "is_error": False}),
            ("turn_complete", {"turn": turn, "usage": {}, "cost_usd": 0, "is_error": False, "interrupted": False}),
        ):
            seq += 1
            event = {"seq": seq, "session_id": session, "type": kind, "time": "2026-01-01T00:00:00Z", **fields}
            lines.append(json.dumps(event) + "\n")
    with journal.open("a") as handle:
        handle.write("".join(lines))
    return seq


def test_a_long_session_draws_only_what_is_in_view(page: Page, server: CoveServer) -> None:
    with server.http() as client:
        sandbox = client.post("/v1/sandboxes", json={}).json()["id"]
        session = client.post(f"/v1/sandboxes/{sandbox}/agent", json={}).json()["session_id"]
        path = f"/v1/sandboxes/{sandbox}/agent/{session}"
        while client.get(path).json()["status"] == "starting":
            time.sleep(0.05)
        last = grow(server, sandbox, session, range(1, TURNS + 1))
        while client.get(path).json()["last_seq"] < last:
            time.sleep(0.05)
    try:
        sign_in(page, server, f"/ui/sandboxes/{sandbox}/sessions/{session}")
        expect(page.get_by_test_id("event-count")).to_have_text(f"{last:,} events")
        events = page.get_by_role("log", name="Session events")
        expect(events).to_contain_text(f"reply number {TURNS}")  # following: the end is in view
        assert page.locator(".row").count() < 100  # of over 1,200 items

        events.evaluate("list => { list.scrollTop = 0; }")
        expect(events).to_contain_text("prompt number 1\n")
        jump = page.get_by_role("button", name="Jump to latest")
        expect(jump).to_be_visible()
        last = grow(server, sandbox, session, range(TURNS + 1, TURNS + 3))  # new events do not move the reader
        expect(page.get_by_test_id("event-count")).to_have_text(f"{last:,} events")
        expect(events).to_contain_text("prompt number 1\n")
        jump.click()
        expect(events).to_contain_text(f"reply number {TURNS + 2}")
        expect(jump).to_have_count(0)
        last = grow(server, sandbox, session, range(TURNS + 3, TURNS + 4))  # at the end again, it follows
        expect(events).to_contain_text(f"reply number {TURNS + 3}")
    finally:
        with server.http() as client:
            client.delete(f"/v1/sandboxes/{sandbox}")
