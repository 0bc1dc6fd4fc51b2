"""What a turn changed, in the browser: the turn's line says how many files, and opens their diff side by side —
the state before the turn on the left, after it on the right."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import CoveServer
from tests.ui.conftest import screenshot, sign_in


@pytest.fixture
def sandbox(server: CoveServer) -> Iterator[str]:
    with server.http() as client:
        sandbox_id: str = client.post("/v1/sandboxes", json={"network": "none"}).json()["id"]
        client.put(f"/v1/sandboxes/{sandbox_id}/files", params={"path": "fib.py"}, content=b"a = 1\nb = 2\nc = 3\n")
    yield sandbox_id
    with server.http() as client:
        client.delete(f"/v1/sandboxes/{sandbox_id}")


def test_a_turns_changes_side_by_side(page: Page, server: CoveServer, sandbox: str) -> None:
    prompt = "@bash sed -i 's/b = 2/b = 20/' fib.py\n@write new.txt\nhello\n@end\n@say Edited."
    with server.http() as client:
        session = client.post(f"/v1/sandboxes/{sandbox}/agent", json={"prompt": prompt}).json()["session_id"]
    sign_in(page, server, f"/ui/sandboxes/{sandbox}/sessions/{session}")
    turn = page.locator(".item.turn", has_text="Turn 1 done")
    turn.get_by_role("button", name="2 files changed").click(timeout=60_000)

    dialog = page.get_by_role("dialog", name="What turn 1 changed")
    expect(dialog).to_be_visible()
    edited = dialog.get_by_role("region", name="fib.py")
    changed = edited.locator("tr", has=page.locator(".removed"))
    expect(changed).to_have_count(1)
    expect(changed.locator("td")).to_have_text(["2", "b = 2", "2", "b = 20"])
    context = edited.locator("tr", has_text="a = 1")
    expect(context.locator("td")).to_have_text(["1", "a = 1", "1", "a = 1"])
    added = dialog.get_by_role("region", name="new.txt")
    expect(added.locator(".added")).to_have_text(["hello"])
    expect(added).to_contain_text("new file mode")
    screenshot(page, "turn-changes")

    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(turn.get_by_role("button", name="2 files changed")).to_be_focused()
