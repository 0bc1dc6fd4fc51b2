"""Published ports in the browser: publish one from the sandbox view, open its preview link, see it in the
sandboxes list, make it public, close it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import CoveServer
from tests.ui.conftest import eventually, sign_in


@pytest.fixture
def sandbox(server: CoveServer) -> Iterator[str]:
    with server.http() as client:
        sandbox_id: str = client.post("/v1/sandboxes", json={"network": "none"}).json()["id"]
        page = b"<h1>Hi from a sandbox</h1>\n"
        client.put(f"/v1/sandboxes/{sandbox_id}/files", params={"path": "site/index.html"}, content=page)
        command = "python3 -m http.server 8000 --bind 127.0.0.1 --directory /workspace/site"
        client.post(f"/v1/sandboxes/{sandbox_id}/exec", json={"command": command, "background": True})
        probe = {"command": "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", 8000))'"}

        def listening() -> bool:
            return bool(client.post(f"/v1/sandboxes/{sandbox_id}/exec", json=probe).json()["exit_code"] == 0)

        eventually(listening, what="the app listening on port 8000")
    yield sandbox_id
    with server.http() as client:
        client.delete(f"/v1/sandboxes/{sandbox_id}")


def test_publish_a_port_and_open_its_preview(page: Page, server: CoveServer, sandbox: str) -> None:
    sign_in(page, server, f"/ui/sandboxes/{sandbox}/ports")
    page.get_by_role("textbox", name="Port").fill("8000")
    page.get_by_role("button", name="Publish").click()
    link = page.get_by_role("link", name="Preview of port 8000")
    expect(link).to_be_visible()
    expect(page.get_by_role("row", name="8000")).to_contain_text("private (token)")

    with page.context.expect_page() as opened:
        link.click()
    preview = opened.value
    expect(preview.get_by_role("heading", name="Hi from a sandbox")).to_be_visible(timeout=30_000)
    assert "token=" not in preview.url  # the preview takes its token out of the address, as the page does
    # The preview shares the page's origin, but not the tab's session storage, where the key is.
    assert preview.evaluate("() => sessionStorage.length") == 0
    preview.close()

    page.get_by_role("button", name="Make port 8000 public").click()
    expect(page.get_by_role("button", name="Make port 8000 private")).to_be_visible()
    url = link.get_attribute("href")
    assert url and "token=" not in url
    assert httpx.get(url, timeout=30).text == "<h1>Hi from a sandbox</h1>\n"

    page.get_by_role("link", name="Sandboxes").click()
    expect(page.get_by_role("row", name=sandbox).get_by_role("link", name="Preview of port 8000")).to_be_visible()

    page.goto(f"{server.url}/ui/sandboxes/{sandbox}/ports")
    page.get_by_role("button", name="Close port 8000").click()
    expect(page.get_by_text("No published ports.")).to_be_visible()
    assert httpx.get(url, timeout=30).status_code == 404
