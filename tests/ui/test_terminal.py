"""A terminal in the browser: xterm.js on the PTY API — typed into, echoed, and still there after a reload."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import CoveServer
from tests.ui.conftest import sign_in


@pytest.fixture
def sandbox(server: CoveServer) -> Iterator[str]:
    with server.http() as client:
        sandbox_id: str = client.post("/v1/sandboxes", json={"network": "none"}).json()["id"]
    yield sandbox_id
    with server.http() as client:
        client.delete(f"/v1/sandboxes/{sandbox_id}")


def test_type_in_the_terminal_and_see_the_echo(page: Page, server: CoveServer, sandbox: str) -> None:
    sign_in(page, server, f"/ui/sandboxes/{sandbox}/terminal")
    page.get_by_role("button", name="New terminal").click()
    expect(page.get_by_role("textbox", name=re.compile(r"^Keys for terminal "))).to_have_count(1, timeout=30_000)
    with server.http() as client:
        (terminal,) = client.get(f"/v1/sandboxes/{sandbox}/pty").json()["ptys"]
    keys = page.get_by_role("textbox", name=f"Keys for terminal {terminal['pty_id']}")
    screen = page.locator(".terminal-screen .xterm-rows")
    expect(screen).to_contain_text("$", timeout=30_000)  # the shell's prompt
    keys.focus()
    page.keyboard.type("echo cove-$((6*7))")
    page.keyboard.press("Enter")
    expect(screen).to_contain_text("cove-42", timeout=30_000)  # the shell's answer, not the keys typed

    page.reload()  # the terminal outlives the page: its recent screen comes back
    page.get_by_role("button", name=f"{terminal['pty_id']} /bin/bash").click()
    expect(screen).to_contain_text("cove-42", timeout=30_000)
    keys.focus()
    page.keyboard.type("exit 3")
    page.keyboard.press("Enter")
    region = page.get_by_role("region", name=f"Terminal {terminal['pty_id']}")
    expect(region).to_contain_text("exited with 3", timeout=30_000)
