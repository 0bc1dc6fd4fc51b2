"""A shared link: /ui/sandboxes/{id}/sessions/{id}?token=… opens that session with a scoped token, offers only what
the token's scopes allow, and never keeps the token in the address bar."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import CoveServer
from tests.ui.conftest import screenshot


@dataclass
class Waiting:
    """A session waiting for an approval, and how to mint tokens for it."""

    server: CoveServer
    sandbox: str
    session: str

    def link(self, scopes: list[str], ttl_s: int = 600) -> tuple[str, str]:
        """A shared link to the session for a token with ``scopes``, and the token's id."""
        with self.server.http() as client:
            body = {"sandbox_id": self.sandbox, "session_id": self.session, "scopes": scopes, "ttl_s": ttl_s}
            minted = client.post("/v1/tokens", json=body).json()
        url = f"{self.server.url}/ui/sandboxes/{self.sandbox}/sessions/{self.session}?token={minted['token']}"
        return url, minted["id"]


@pytest.fixture
def waiting(server: CoveServer) -> Iterator[Waiting]:
    with server.http() as client:
        sandbox = client.post("/v1/sandboxes", json={"network": "none"}).json()["id"]
        body = {"prompt": "@write shared.txt\nfrom a link\n@end", "permission_mode": "default"}
        session = client.post(f"/v1/sandboxes/{sandbox}/agent", json=body).json()["session_id"]
    yield Waiting(server, sandbox, session)
    with server.http() as client:
        client.delete(f"/v1/sandboxes/{sandbox}")


def test_a_read_only_link_shows_the_session_and_offers_nothing_to_press(page: Page, waiting: Waiting) -> None:
    link, _ = waiting.link(["read"])
    page.goto(link)
    tool = page.locator(".tool", has_text="shared.txt")
    expect(tool).to_contain_text("waiting for approval", timeout=60_000)
    assert "token=" not in page.url and page.url.endswith(f"/sessions/{waiting.session}")
    expect(page.get_by_text("shared link: read")).to_be_visible()
    for name in ("Approve", "Deny", "Interrupt", "Switch model", "Send"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)
    expect(page.get_by_label("Prompt", exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name="Sandboxes")).to_have_count(0)
    screenshot(page, "shared-link")

    page.goto(waiting.server.url + "/ui/")  # anything else the token cannot see is its session again
    expect(page.locator(".tool", has_text="shared.txt")).to_be_visible(timeout=30_000)
    expect(page.get_by_role("heading", name="Sandboxes")).to_have_count(0)


def test_a_link_that_may_approve_and_prompt_does_so_as_its_token(page: Page, waiting: Waiting) -> None:
    link, token_id = waiting.link(["read", "approve", "prompt"])
    page.goto(link)
    page.get_by_role("button", name="Approve").click(timeout=60_000)
    expect(page.locator(".tool", has_text="shared.txt")).to_contain_text(f"allowed by {token_id}", timeout=60_000)
    prompt = page.get_by_label("Prompt", exact=True)
    prompt.fill("@say prompted through a link")
    prompt.press("Enter")
    expect(page.locator(".item.text").last).to_have_text("prompted through a link", timeout=60_000)


def test_a_revoked_link_says_so_and_asks_for_a_key(page: Page, waiting: Waiting) -> None:
    link, token_id = waiting.link(["read"])
    with waiting.server.http() as client:
        client.delete(f"/v1/tokens/{token_id}")
    page.goto(link)
    expect(page.get_by_role("alert")).to_contain_text("expired or was revoked")
    expect(page.get_by_label("API key")).to_be_visible()
    assert "token=" not in page.url
