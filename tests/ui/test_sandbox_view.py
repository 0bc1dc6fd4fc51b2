"""The sandbox view: files (upload by drag and drop and by picking, view, download), processes with live output,
checkpoints taken and forked, the tabs from the keyboard."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from playwright.sync_api import FilePayload, Page, expect

from tests.conftest import CoveServer
from tests.ui.conftest import screenshot, sign_in

# A 2x2 PNG, to see an image of the sandbox drawn through a blob: URL (which the page's policy allows).
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGP4zwAE/xkgFAAb8gP91pbyKwAAAABJRU5ErkJggg=="
)


@pytest.fixture
def sandbox(server: CoveServer) -> Iterator[str]:
    with server.http() as client:
        sandbox_id: str = client.post("/v1/sandboxes", json={"labels": {"test": "inspector"}}).json()["id"]
        client.post(f"/v1/sandboxes/{sandbox_id}/files/mkdir", json={"path": "docs"})
        client.put(f"/v1/sandboxes/{sandbox_id}/files", params={"path": "README.md"}, content=b"# A project\n")
    yield sandbox_id
    with server.http() as client:
        client.delete(f"/v1/sandboxes/{sandbox_id}")


def drop(page: Page, target: str, name: str, content: str) -> None:
    """Drag a file from the desktop onto ``target``, as a browser delivers it."""
    transfer = page.evaluate_handle(
        "([name, content]) => { const t = new DataTransfer(); t.items.add(new File([content], name)); return t; }",
        [name, content],
    )
    page.locator(target).first.dispatch_event("dragover", {"dataTransfer": transfer})
    page.locator(target).first.dispatch_event("drop", {"dataTransfer": transfer})


def test_files_dropped_and_picked_then_viewed_and_downloaded(page: Page, server: CoveServer, sandbox: str) -> None:
    sign_in(page, server, f"/ui/sandboxes/{sandbox}/files")
    files = page.get_by_role("region", name="Files")
    expect(files.get_by_role("button", name="README.md")).to_be_visible()

    drop(page, "section.files", "dropped.txt", "dropped on the tree\n")
    expect(files.get_by_role("button", name="dropped.txt")).to_be_visible()
    files.get_by_role("button", name="docs/").click()
    drop(page, "li:has(> button:text('docs/'))", "inside.txt", "dropped on a folder\n")
    expect(files.get_by_role("button", name="inside.txt")).to_be_visible()
    picked: FilePayload = {"name": "picture.png", "mimeType": "image/png", "buffer": PNG}
    files.get_by_label("Upload files").set_input_files([picked])
    expect(files.get_by_role("button", name="picture.png")).to_be_visible()
    with server.http() as client:
        listed = client.get(f"/v1/sandboxes/{sandbox}/files", params={"path": "docs/inside.txt"})
        assert listed.text == "dropped on a folder\n"

    files.get_by_role("button", name="picture.png").click()
    image = page.get_by_role("img", name="picture.png")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.naturalWidth") == 2
    files.get_by_role("button", name="README.md").click()
    viewer = page.get_by_role("region", name="File /workspace/README.md")
    expect(viewer.locator("pre")).to_have_text("# A project\n")
    with page.expect_download() as download:
        viewer.get_by_role("button", name="Download").click()
    assert download.value.suggested_filename == "README.md"
    screenshot(page, "sandbox")


def test_processes_stream_their_output(page: Page, server: CoveServer, sandbox: str) -> None:
    sign_in(page, server, f"/ui/sandboxes/{sandbox}/processes")
    page.get_by_label("Command").fill("for i in 1 2 3; do echo line-$i; sleep 0.3; done")
    page.get_by_role("button", name="Run in background").click()
    output = page.locator(".output pre")
    expect(output).to_contain_text("line-1", timeout=30_000)
    expect(output).to_have_text("line-1\nline-2\nline-3\n", timeout=30_000)
    expect(page.locator(".output h2")).to_contain_text("exited with 0")


def test_checkpoints_taken_and_forked(page: Page, server: CoveServer, sandbox: str) -> None:
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, server, f"/ui/sandboxes/{sandbox}/checkpoints")
    page.get_by_label("Checkpoint name").fill("before")
    page.get_by_role("button", name="Take checkpoint").click()
    row = page.get_by_role("row", name="before")
    expect(row).to_be_visible(timeout=30_000)
    row.get_by_role("button", name="Fork").click()
    page.wait_for_url(lambda url: sandbox not in url and "/ui/sandboxes/sbx_" in url)
    fork = page.url.rsplit("/", 1)[-1]
    with server.http() as client:
        assert client.get(f"/v1/sandboxes/{fork}/files", params={"path": "README.md"}).text == "# A project\n"
    page.get_by_role("button", name="Kill sandbox").click()
    expect(page.get_by_text("stopped", exact=True)).to_be_visible(timeout=30_000)


def test_the_tabs_work_from_the_keyboard(page: Page, server: CoveServer, sandbox: str) -> None:
    sign_in(page, server, f"/ui/sandboxes/{sandbox}")
    tab = page.get_by_role("tab", name="Sessions")
    expect(tab).to_have_attribute("aria-selected", "true")
    tab.focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Processes")).to_be_focused()
    expect(page.get_by_role("tab", name="Processes")).to_have_attribute("aria-selected", "true")
    page.keyboard.press("End")
    expect(page.get_by_role("tab", name="Ports")).to_be_focused()
    assert page.url.endswith("/ports")
