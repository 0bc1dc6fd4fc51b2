"""The Inspector in a real browser: Debian's Chromium driven by Playwright (no browser download), against a real
server and the real Claude Code CLI on the model simulator.

Screenshots go to ``$COVE_SCREENSHOTS`` (``make screenshots`` points it at docs/screenshots, the README's
images), else to ``build/screenshots``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from cove.api.inspector import BUILT
from cove.testing import CHROMIUM_FLAGS, chromium
from tests.conftest import ROOT, CoveServer

SCREENSHOTS = Path(os.environ.get("COVE_SCREENSHOTS") or ROOT / "build" / "screenshots")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not (BUILT / "index.html").is_file():
        pytest.fail("the Inspector is not built: `make ui` builds it")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def policy_violation(message: ConsoleMessage) -> None:
        # A refused script or style breaks the Content-Security-Policy: the page must need none.
        if "Content Security Policy" in message.text:
            problems.append(message.text)

    opened.on("console", policy_violation)
    yield opened
    context.close()
    assert not problems, problems


def sign_in(page: Page, server: CoveServer, path: str = "/ui/", key: str | None = None) -> None:
    """Sign in at ``path`` with ``key`` (the admin's by default)."""
    page.goto(server.url + path)
    page.get_by_label("API key").fill(key or server.api_key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Sign out").wait_for()


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png")


def eventually(check: Callable[[], Any], within: float = 30, what: str = "condition") -> Any:
    """The first truthy value of ``check``, polled — for state the server reaches on its own schedule."""
    deadline = time.monotonic() + within
    while not (value := check()):
        assert time.monotonic() < deadline, f"{what} not reached in {within} s"
        time.sleep(0.1)
    return value


def session_events(server: CoveServer, sandbox_id: str, session_id: str) -> list[dict[str, Any]]:
    with server.http() as client:
        reply = client.get(f"/v1/sandboxes/{sandbox_id}/agent/{session_id}/events", params={"limit": 10_000})
        events: list[dict[str, Any]] = reply.json()["events"]
        return events
