"""The page in a narrow window and in the system's dark mode; a sign-in kept to its tab and out of every URL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import CoveServer
from tests.ui.conftest import sign_in


@pytest.fixture
def sandbox(server: CoveServer) -> Iterator[str]:
    with server.http() as client:
        body = {"labels": {"team": "a-rather-long-team-name", "purpose": "narrow-window-test"}}
        sandbox_id: str = client.post("/v1/sandboxes", json=body).json()["id"]
        client.post(f"/v1/sandboxes/{sandbox_id}/agent", json={"prompt": "@say hello from a phone"})
    yield sandbox_id
    with server.http() as client:
        client.delete(f"/v1/sandboxes/{sandbox_id}")


def overflows(page: Page) -> bool:
    return bool(page.evaluate("() => document.documentElement.scrollWidth > innerWidth + 1"))


def test_a_narrow_window_scrolls_only_down(browser: Browser, server: CoveServer, sandbox: str) -> None:
    context = browser.new_context(viewport={"width": 380, "height": 760})
    page = context.new_page()
    try:
        sign_in(page, server)
        expect(page.get_by_role("link", name=sandbox)).to_be_visible()
        assert not overflows(page)
        for tab in ("", "/processes", "/terminal", "/files", "/checkpoints", "/ports"):
            page.goto(f"{server.url}/ui/sandboxes/{sandbox}{tab}")
            expect(page.get_by_role("tabpanel")).to_be_visible()
            assert not overflows(page), tab
        page.get_by_role("tab", name="Sessions").click()
        page.get_by_role("link", name="ses_").first.click()
        expect(page.locator(".item.text")).to_contain_text("hello from a phone", timeout=60_000)
        expect(page.get_by_label("Prompt", exact=True)).to_be_in_viewport()
        assert not overflows(page)
    finally:
        context.close()


def test_dark_and_light_follow_the_system(browser: Browser, server: CoveServer) -> None:
    backgrounds = {}
    for scheme in ("light", "dark"):
        context = browser.new_context(color_scheme=scheme)
        page = context.new_page()
        page.goto(server.url + "/ui/")
        backgrounds[scheme] = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        context.close()
    assert backgrounds == {"light": "rgb(255, 255, 255)", "dark": "rgb(15, 18, 22)"}


def test_the_key_stays_in_this_tab_and_out_of_urls(page: Page, server: CoveServer) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("websocket", lambda socket: requests.append(socket.url))
    sign_in(page, server)
    expect(page.get_by_role("heading", name="Sandboxes")).to_be_visible()
    assert page.evaluate("() => localStorage.length") == 0
    assert server.api_key in page.evaluate("() => sessionStorage.getItem('cove.credentials')")
    assert not [url for url in requests if server.api_key in url]
    other = page.context.new_page()  # a new tab has its own session storage: it asks again
    other.goto(server.url + "/ui/")
    expect(other.get_by_label("API key")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API key")).to_be_visible()
    assert page.evaluate("() => sessionStorage.getItem('cove.credentials')") is None
