"""Every view checked by axe-core (the WCAG 2 A and AA rules: labelled controls, names, roles, contrast…), in
light and dark, with a permission request waiting — and the session driven from the keyboard alone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.conftest import ROOT, CoveServer
from tests.ui.conftest import sign_in

AXE = ROOT / "ui" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture
def sandbox(server: CoveServer) -> Iterator[str]:
    with server.http() as client:
        sandbox_id: str = client.post("/v1/sandboxes", json={"labels": {"test": "accessibility"}}).json()["id"]
        client.put(f"/v1/sandboxes/{sandbox_id}/files", params={"path": "notes.md"}, content=b"notes\n")
        client.post(f"/v1/sandboxes/{sandbox_id}/exec", json={"command": "sleep 60", "background": True})
    yield sandbox_id
    with server.http() as client:
        client.delete(f"/v1/sandboxes/{sandbox_id}")


def violations(page: Page) -> list[dict[str, Any]]:
    # Evaluated through the browser's debugging protocol, which the page's policy does not govern: the page
    # itself loads no script but its own.
    if not page.evaluate("() => 'axe' in window"):
        page.evaluate("() => {" + AXE.read_text() + "\n}")
    result: dict[str, Any] = page.evaluate(
        "() => axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
    )
    return [
        {"rule": v["id"], "help": v["help"], "nodes": [n["html"][:120] for n in v["nodes"][:3]]}
        for v in result["violations"]
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_view_passes_axe(browser: Browser, server: CoveServer, sandbox: str, scheme: str) -> None:
    assert AXE.is_file(), "axe-core comes with the Inspector's dev dependencies: `make ui` installs them"
    context = browser.new_context(color_scheme=scheme, viewport={"width": 1280, "height": 860})
    page = context.new_page()
    try:
        page.goto(server.url + "/ui/")
        page.get_by_label("API key").wait_for()
        found = {"sign-in": violations(page)}
        sign_in(page, server)
        expect(page.get_by_role("link", name=sandbox)).to_be_visible()
        page.get_by_role("button", name="New sandbox").click()
        found["sandboxes"] = violations(page)
        for tab in ("processes", "terminal", "files", "checkpoints", "ports", ""):
            page.goto(f"{server.url}/ui/sandboxes/{sandbox}/{tab}")
            expect(page.get_by_role("tabpanel")).to_be_visible()
            page.wait_for_load_state("networkidle")
            found[f"sandbox {tab or 'sessions'}"] = violations(page)
        page.goto(f"{server.url}/ui/sandboxes/{sandbox}/terminal")
        page.get_by_role("button", name="New terminal").click()
        expect(page.locator(".terminal-screen .xterm-rows")).to_contain_text("$", timeout=30_000)
        found["terminal"] = violations(page)
        page.goto(f"{server.url}/ui/sandboxes/{sandbox}")
        page.get_by_label("First prompt").fill("@write notes.md\nchanged\n@end")
        page.get_by_role("button", name="Start session").click()
        expect(page.get_by_role("button", name="Approve")).to_be_visible(timeout=60_000)
        found["session"] = violations(page)
        page.get_by_role("button", name="Approve").click()
        page.get_by_role("button", name="1 file changed").click(timeout=60_000)
        expect(page.get_by_role("dialog").locator(".added")).to_have_text(["changed"])
        found["turn's changes"] = violations(page)
    finally:
        context.close()
    assert not {view: problems for view, problems in found.items() if problems}


def tab_to(page: Page, target: Locator) -> None:
    """Press Tab until ``target`` has the focus, as a keyboard user moves through the page."""
    for _ in range(60):
        page.keyboard.press("Tab")
        if target.evaluate("element => element === document.activeElement"):
            return
    raise AssertionError("Tab never reached it")


def test_a_session_from_the_keyboard_alone(page: Page, server: CoveServer, sandbox: str) -> None:
    with server.http() as client:
        body = {"prompt": "@write notes.md\nby keyboard\n@end", "permission_mode": "default"}
        session = client.post(f"/v1/sandboxes/{sandbox}/agent", json=body).json()["session_id"]
    sign_in(page, server, f"/ui/sandboxes/{sandbox}/sessions/{session}")
    approve = page.get_by_role("button", name="Approve")
    expect(approve).to_be_visible(timeout=60_000)
    tab_to(page, approve)
    page.keyboard.press("Enter")
    expect(page.locator(".item.turn", has_text="Turn 1 done")).to_be_visible(timeout=60_000)
    tab_to(page, page.get_by_label("Prompt", exact=True))
    page.keyboard.type("@say typed")
    page.keyboard.press("Enter")
    expect(page.locator(".item.text").last).to_have_text("typed", timeout=60_000)
