"""``cove sandbox expose|ports|unexpose``: a preview URL to open, the list, and closing it."""

from __future__ import annotations

import json
import time

import httpx

from cove import Sandbox
from tests.cli.conftest import cove
from tests.conftest import CoveServer


def test_expose_list_open_and_unexpose(server: CoveServer, sandbox_id: str) -> None:
    sandbox = Sandbox.connect(sandbox_id, url=server.url, api_key=server.api_key)
    sandbox.files.write("/workspace/index.html", "served from the sandbox\n")
    sandbox.exec.background("python3 -m http.server 8000 --bind 127.0.0.1", cwd="/workspace")
    sandbox.close()  # the handle only: the sandbox is the fixture's

    opened = cove(server, "sandbox", "expose", sandbox_id, "8000").stdout.strip()
    info = json.loads(cove(server, "sandbox", "expose", sandbox_id, "8000", "--json").stdout)
    assert opened == f"{info['url']}?token={info['token']}" and info["public"] is False
    assert info["url"] == f"{server.url}/v1/sandboxes/{sandbox_id}/ports/8000/"
    with httpx.Client(follow_redirects=True) as browser:
        deadline = time.monotonic() + 30
        while (page := browser.get(opened)).status_code == 502:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert page.text == "served from the sandbox\n"
        assert browser.get(info["url"]).status_code == 200  # the cookie keeps it open

    public = cove(server, "sandbox", "expose", sandbox_id, "3000", "--public").stdout.strip()
    assert public == f"{server.url}/v1/sandboxes/{sandbox_id}/ports/3000/"
    listed = cove(server, "sandbox", "ports", sandbox_id, env={"COLUMNS": "300"}).stdout.splitlines()
    assert listed[0].split() == ["PORT", "ACCESS", "URL"]
    assert [line.split()[:2] for line in listed[1:]] == [["3000", "public"], ["8000", "private"]]
    as_json = json.loads(cove(server, "sandbox", "ports", sandbox_id, "--json").stdout)
    assert [(p["port"], p["token"]) for p in as_json][1] == (8000, info["token"])

    closed = cove(server, "sandbox", "unexpose", sandbox_id, "8000")
    assert closed.stdout.strip() == f"closed port 8000 of {sandbox_id}"
    assert httpx.get(info["url"], headers={"x-cove-preview-token": info["token"]}).status_code == 404
    again = cove(server, "sandbox", "unexpose", sandbox_id, "8000", check=False)
    assert again.returncode == 1 and "port_not_found" in again.stderr
    out_of_range = cove(server, "sandbox", "expose", sandbox_id, "70000", check=False)
    assert out_of_range.returncode == 2 and "65535" in out_of_range.stderr
