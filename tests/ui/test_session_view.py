"""The session view against a real agent: streamed text, approvals, interrupts, queued prompts, reloads — and
event text that is only ever text."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import CoveServer
from tests.ui.conftest import eventually, screenshot, session_events, sign_in

SESSION_URL = re.compile(r"/ui/sandboxes/(sbx_\w+)/sessions/(ses_\w+)$")


@pytest.fixture
def sandbox(server: CoveServer) -> Iterator[str]:
    with server.http() as client:
        sandbox_id: str = client.post("/v1/sandboxes", json={"labels": {"test": "inspector"}}).json()["id"]
    yield sandbox_id
    with server.http() as client:
        client.delete(f"/v1/sandboxes/{sandbox_id}")


def open_session(page: Page, server: CoveServer, sandbox: str, **start: object) -> str:
    """A session started over REST (with permission mode ``default``: tools ask), opened in the page."""
    with server.http() as client:
        body = {"permission_mode": "default", **start}
        session: str = client.post(f"/v1/sandboxes/{sandbox}/agent", json=body).json()["session_id"]
    sign_in(page, server, f"/ui/sandboxes/{sandbox}/sessions/{session}")
    expect(page.get_by_label("Connection: live")).to_be_visible(timeout=30_000)
    return session


def send(page: Page, text: str) -> None:
    prompt = page.get_by_label("Prompt", exact=True)
    prompt.fill(text)
    prompt.press("Enter")


def turn_done(page: Page, turn: int, outcome: str = "done") -> None:
    expect(page.locator(".item.turn", has_text=f"Turn {turn} {outcome}")).to_be_visible(timeout=60_000)


def test_sign_in_then_start_a_session_and_watch_its_text_stream(page: Page, server: CoveServer) -> None:
    page.goto(server.url + "/")
    page.get_by_label("API key").fill("cove_not_a_key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("refused")
    page.get_by_label("API key").fill(server.api_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Sandboxes")).to_be_visible()

    page.get_by_role("button", name="New sandbox").click()
    page.get_by_label("Labels").first.fill("team=docs, purpose=screenshots")
    page.get_by_role("button", name="Create sandbox").click()
    page.get_by_label("First prompt").fill(
        "@slow 3 The agent's reply arrives in many small pieces, so you can watch it being written.\n"
        "@think Thinking arrives folded, before the reply."
    )
    expect(page.get_by_label("Permissions")).to_have_value("default")
    page.get_by_role("button", name="Start session").click()
    page.wait_for_url(SESSION_URL)
    found = SESSION_URL.search(page.url)
    assert found is not None
    sandbox, session = found.groups()

    # Text drawn while it streams: part of the reply is on screen before the turn is over.
    streaming = page.locator(".item.text.streaming")
    expect(streaming).to_contain_text("The agent", timeout=30_000)
    partial = streaming.inner_text()
    types = {event["type"] for event in session_events(server, sandbox, session)}
    assert "turn_complete" not in types and "text_delta" in types
    turn_done(page, 1)
    final = page.locator(".item.text").last.inner_text()
    assert final.startswith(partial.rstrip("▍").rstrip()) and final != partial
    expect(page.get_by_text("Thinking (")).to_be_visible()

    # Enter sends, Shift+Enter breaks the line.
    prompt = page.get_by_label("Prompt", exact=True)
    prompt.fill("@say first line")
    prompt.press("Shift+Enter")
    prompt.type("@say second line")
    assert prompt.input_value() == "@say first line\n@say second line"
    prompt.press("Enter")
    expect(prompt).to_have_value("")
    turn_done(page, 2)
    expect(page.locator(".item.text").last).to_have_text("first line\nsecond line")

    # The model switch: in force from the next turn.
    page.get_by_label("Model", exact=True).fill("claude-sonnet-4-5")
    page.get_by_role("button", name="Switch model").click()
    expect(page.get_by_text('Configured: model = "claude-sonnet-4-5"')).to_be_visible()
    send(page, "@model")
    turn_done(page, 3)
    expect(page.locator(".item.text").last).to_have_text("Model: claude-sonnet-4-5")

    page.get_by_role("link", name="Sandboxes").click()
    expect(page.get_by_role("link", name=sandbox)).to_be_visible()
    expect(page.get_by_text("purpose=screenshots")).to_be_visible()
    screenshot(page, "sandboxes")


def test_approve_one_tool_call_and_deny_another(page: Page, server: CoveServer, sandbox: str) -> None:
    session = open_session(page, server, sandbox)
    send(
        page,
        "Write two files.\n@think Two files: first.txt, then second.txt.\n"
        "@write first.txt\none\n@end\n@write second.txt\ntwo\n@end\n@say Wrote what I was allowed to.",
    )
    approvals = page.get_by_role("region", name="Waiting for approval")
    expect(approvals).to_contain_text("first.txt", timeout=30_000)
    approvals.get_by_role("button", name="Approve").click()
    expect(approvals).to_contain_text("second.txt", timeout=30_000)
    approvals.get_by_label("Message for the agent, if denied").fill("not that one")
    screenshot(page, "session")
    approvals.get_by_role("button", name="Deny").click()
    turn_done(page, 1)
    expect(approvals).to_have_count(0)

    resolved = [e for e in session_events(server, sandbox, session) if e["type"] == "permission_resolved"]
    assert [(e["decision"], e["message"]) for e in resolved] == [("allow", None), ("deny", "not that one")]
    expect(page.locator(".tool", has_text="first.txt")).to_contain_text("allowed by key_")
    expect(page.locator(".tool", has_text="second.txt")).to_contain_text("denied by key_")
    expect(page.locator(".tool", has_text="second.txt")).to_contain_text("not that one")
    with server.http() as client:
        files = client.get(f"/v1/sandboxes/{sandbox}/files/list").json()["entries"]
    assert {f["name"] for f in files} >= {"first.txt"} and "second.txt" not in {f["name"] for f in files}


def test_prompts_queue_while_a_turn_runs_and_interrupt_stops_it(page: Page, server: CoveServer, sandbox: str) -> None:
    session = open_session(page, server, sandbox)
    send(page, "@slow 20 a long answer that the test interrupts long before it ends")
    expect(page.locator(".item.text.streaming")).to_contain_text("a long", timeout=30_000)
    send(page, "@say the queued prompt ran")
    expect(page.get_by_role("list", name="Queued prompts")).to_contain_text("Queued for turn 2")
    page.get_by_role("button", name="Interrupt").click()
    turn_done(page, 1, "interrupted")
    turn_done(page, 2)
    expect(page.get_by_role("list", name="Queued prompts")).to_have_count(0)
    expect(page.locator(".item.text").last).to_contain_text("the queued prompt ran")
    types = [e["type"] for e in session_events(server, sandbox, session)]
    assert "interrupted" in types


def test_a_reload_mid_turn_shows_every_event_once(page: Page, server: CoveServer, sandbox: str) -> None:
    session = open_session(page, server, sandbox)
    send(page, "@slow 5 " + " ".join(f"word{i}" for i in range(60)))
    expect(page.locator(".item.text.streaming")).to_contain_text("word3", timeout=30_000)
    page.reload()
    # Replayed and then live: the text on screen is a prefix of the reply, never a repeat of what came before.
    streaming = page.locator(".item.text.streaming")
    expect(streaming).to_contain_text("word", timeout=30_000)
    during = streaming.inner_text().rstrip("▍").rstrip()
    turn_done(page, 1)
    final = page.locator(".item.text").last.inner_text()
    assert final.startswith(during), (during, final)
    assert final.count("word59") == 1 and final.count("word0 ") == 1

    last_seq = eventually(lambda: session_events(server, sandbox, session)[-1]["seq"])
    expect(page.get_by_test_id("event-count")).to_have_text(f"{last_seq} events")
    keys = page.locator(".row").evaluate_all("rows => rows.map(row => row.dataset.key)")
    assert len(keys) == len(set(keys)), keys
    assert page.locator(".prompt").count() == 1


def test_event_text_is_shown_as_text_never_as_html(page: Page, server: CoveServer, sandbox: str) -> None:
    open_session(page, server, sandbox)
    hostile = "<img src=x onerror=\"document.title='pwned'\"><b>bold</b>"
    send(page, f"@say {hostile}")
    turn_done(page, 1)
    expect(page.locator(".item.text").last).to_have_text(hostile)
    assert page.locator(".virtual img, .virtual b").count() == 0
    assert page.title() == "Cove Inspector"
