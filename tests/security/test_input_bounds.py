"""Every input the review broke: refused with a 4xx that names the field, quickly, and nothing stored; secrets in
URLs never reach the log; a sandbox cannot trace its own supervisor."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from cove import AsyncSandbox
from tests.conftest import CoveServer, serving
from tests.security.conftest import server_answers, sh


def _refused(reply: Any, status: int, *words: str) -> None:
    assert reply.status_code == status, reply.text
    message = reply.json()["error"]["message"]
    for word in words:
        assert word in message, message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"labels": {"team": "x" * 2_000_000}}, "labels"),
        ({"labels": {f"k{i}": "v" for i in range(1000)}}, "labels"),
        ({"labels": {"bad key!": "v"}}, "labels"),
        ({"env": {"=": "x"}}, "env"),
        ({"env": {"A": "nul\0here"}}, "env"),
        ({"env": {f"V{i}": "x" for i in range(1000)}}, "env"),
        ({"limits": {"disk_mb": 1e20}}, "limits.disk_mb"),
        ({"limits": {"cpus": 1e-9}}, "limits.cpus"),
        ({"limits": {"memory_mb": 2**70}}, "limits.memory_mb"),
        ({"timeout": 1e300}, "timeout"),
        ({"cwd": "/workspace/../etc"}, "cwd"),
        ({"cwd": "/workspace/" + "a" * 5000}, "cwd"),
    ],
)
def test_sandbox_creates_out_of_bounds_are_refused_naming_the_field(
    server: CoveServer, body: dict[str, Any], field: str
) -> None:
    with server.http() as client:
        before = len(client.get("/v1/sandboxes").json()["sandboxes"])
        _refused(client.post("/v1/sandboxes", json=body), 422, field)
        assert len(client.get("/v1/sandboxes").json()["sandboxes"]) == before


def test_a_body_over_the_cap_is_refused_before_it_is_read(server: CoveServer) -> None:
    with server.http() as client:
        huge = json.dumps({"labels": {"team": "x" * 20_000_000}})
        _refused(client.post("/v1/sandboxes", content=huge, headers={"content-type": "application/json"}), 413)
        assert client.post("/v1/sandboxes", content=huge).json()["error"]["code"] == "payload_too_large"

        def chunks() -> Any:  # no content-length: counted as it arrives
            for _ in range(40):
                yield b"x" * 1_000_000

        _refused(client.post("/v1/sandboxes", content=chunks(), headers={"content-type": "application/json"}), 413)
    assert server_answers(server)


def test_a_head_of_thousands_of_headers_is_refused(server: CoveServer) -> None:
    head = "GET /healthz HTTP/1.1\r\nhost: x\r\n" + "".join(f"x-h{i}: v\r\n" for i in range(5000)) + "\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(head.encode())
        answer = conn.recv(65536)
    assert answer.startswith(b"HTTP/1.1 431 ") and b"request_header_fields_too_large" in answer
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(b"GET /healthz?" + b"q" * 100_000 + b" HTTP/1.1\r\nhost: x\r\n\r\n")
        assert conn.recv(65536).startswith(b"HTTP/1.1 431 ")
    assert server_answers(server)


async def test_execs_out_of_bounds_are_refused_naming_the_field(server: CoveServer, attacker: AsyncSandbox) -> None:
    base = f"/v1/sandboxes/{attacker.id}"
    with server.http() as client:
        for body, field in [
            ({"command": ["ls", "nul\0"]}, "command"),
            ({"command": "echo\0"}, "command"),
            ({"command": ""}, "command"),
            ({"command": "ls", "env": {"": "x"}}, "env"),
            ({"command": "ls", "cwd": "/workspace/../etc"}, "cwd"),
            ({"command": "ls", "cwd": "relative"}, "cwd"),
            ({"command": "ls", "timeout": 1e300}, "timeout"),
        ]:
            _refused(client.post(f"{base}/exec", json=body), 422, field)
        started = client.post(f"{base}/exec", json={"command": "sleep 30", "background": True}).json()
        for value in (0, 99, 2**40, -1):
            _refused(client.post(f"{base}/processes/{started['id']}/signal", json={"signal": value}), 422, "signal")
        _refused(client.post(f"{base}/processes/{started['id']}/signal", json={"signal": "SIGNOPE"}), 400, "signal")
        client.delete(f"{base}/processes/{started['id']}")
        _refused(client.get(f"{base}/processes/{'p' * 5000}"), 404)
    # A signal out of range on the exec stream: an error frame, and the stream goes on.
    url = server.url.replace("http", "ws") + f"{base}/exec/ws"
    headers = {"authorization": f"Bearer {server.api_key}"}
    async with websockets.connect(url, additional_headers=headers) as ws:
        await ws.send(json.dumps({"command": "read line; echo got $line"}))
        assert json.loads(await ws.recv())["type"] == "started"
        await ws.send(json.dumps({"type": "signal", "signal": 9999}))
        assert json.loads(await ws.recv())["type"] == "error"
        await ws.send(json.dumps({"type": "stdin", "text": "it\n"}))
        frames = [json.loads(await ws.recv()) for _ in range(2)]
        assert frames[0]["type"] == "stdout" and frames[-1]["type"] == "exit"


async def test_paths_and_events_out_of_bounds(server: CoveServer, attacker: AsyncSandbox) -> None:
    base = f"/v1/sandboxes/{attacker.id}"
    with server.http() as client:
        _refused(client.get(f"{base}/files/stat", params={"path": "a" * 5000}), 422, "path")
        _refused(client.get(f"{base}/files/stat", params={"path": "a\0b"}), 400)
        _refused(client.post(f"{base}/files/rename", json={"source": "/workspace", "destination": "/tmp/w"}), 403)
        _refused(client.post(f"{base}/files/rename", json={"source": "/tmp", "destination": "/workspace/t"}), 403)
        _refused(client.delete(f"{base}/files", params={"path": "/workspace", "recursive": "true"}), 403)
        session = client.post(f"{base}/agent", json={}).json()
        events = f"{base}/agent/{session['session_id']}/events"
        _refused(client.get(events, params={"after": "13000000000000000000"}), 422, "after")
        _refused(client.get(events, params={"after": "1.3e19"}), 422, "after")
        _refused(client.post(f"{base}/agent", json={"resume": "../../etc/passwd"}), 422, "resume")
        _refused(client.post(f"{base}/agent", json={"cwd": "/workspace/../../etc"}), 422, "cwd")
        client.post(f"{base}/agent/{session['session_id']}/kill")
    assert (await attacker.files.stat("/workspace")).type == "dir"


async def test_a_directory_of_400000_entries_is_listed_page_by_page(server: CoveServer, attacker: AsyncSandbox) -> None:
    await sh(attacker, "mkdir /workspace/many && cd /workspace/many && seq -w 1 400000 | xargs touch", timeout=300)
    first = await attacker.exec.run("true")  # the sandbox is fine
    assert first.exit_code == 0
    with server.http() as client:
        page = client.get(f"/v1/sandboxes/{attacker.id}/files/list", params={"path": "many"}, timeout=120)
        assert page.status_code == 200
        listing = page.json()
        assert len(listing["entries"]) == 10_000 and listing["has_more"]
        last = listing["entries"][-1]["name"]
        following = client.get(
            f"/v1/sandboxes/{attacker.id}/files/list", params={"path": "many", "after": last, "limit": 5}, timeout=120
        ).json()
        assert [e["name"] for e in following["entries"]] == [f"{n:06d}" for n in range(10_001, 10_006)]
    assert server_answers(server)


async def test_keys_in_websocket_urls_never_reach_the_log(server: CoveServer, attacker: AsyncSandbox) -> None:
    url = server.url.replace("http", "ws") + f"/v1/sandboxes/{attacker.id}/exec/ws?api_key={server.api_key}"
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"command": "echo logged"}))
        while json.loads(await ws.recv())["type"] != "exit":
            pass
    await asyncio.sleep(0)  # the access line is written as the connection is accepted, before this point
    log = server.log_path.read_text(errors="replace")
    assert "api_key=[redacted]" in log
    assert server.api_key not in log


def test_the_access_log_is_asked_for_and_keeps_no_key(tmp_path: Path) -> None:
    for args in ([], ["--access-log"]):
        with serving(tmp_path / f"home{len(args)}", args=args) as logged:
            assert httpx.get(f"{logged.url}/healthz", params={"api_key": logged.api_key}).status_code == 200
        log = logged.log_path.read_text(errors="replace")
        assert logged.api_key not in log
        assert ("GET /healthz?api_key=[redacted] HTTP/1.1" in log) == bool(args)


async def test_the_supervisor_cannot_be_traced_from_inside(attacker: AsyncSandbox) -> None:
    trace = "import ctypes; print(ctypes.CDLL(None, use_errno=True).ptrace(16, 1, 0, 0), ctypes.get_errno())"
    result = await attacker.exec.run(["python3", "-c", trace])
    assert result.stdout.split()[0] == "-1"
    assert (await attacker.exec.run("cat /proc/1/environ")).exit_code != 0
    assert (await attacker.exec.run("ls /proc/1/fd")).exit_code != 0
