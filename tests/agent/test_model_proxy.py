"""The real model key never enters a sandbox; the proxy swaps it in, and meters each session."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from cove import AsyncSandbox
from cove.modelproxy.proxy import MAX_HEAD, ModelProxy, Upstream
from cove.testing import free_port, simulator_process
from tests.agent.conftest import texts
from tests.conftest import CoveServer

REAL_KEY = "sk-ant-real-key-that-must-stay-outside-0123456789"


@pytest.fixture
def upstream() -> Iterator[str]:
    """An 'Anthropic-compatible gateway': the simulator, run on its own, as the configured upstream."""
    with simulator_process() as url:
        yield url


async def test_real_key_stays_outside_and_usage_is_metered(upstream: str, tmp_path: Path) -> None:
    server = CoveServer(tmp_path / "home", extra_env={"ANTHROPIC_API_KEY": REAL_KEY, "ANTHROPIC_BASE_URL": upstream})
    server.start()
    try:
        with server.http() as client:
            info = client.get("/v1/model").json()
        assert info == {"upstream": "anthropic-compatible", "base_url": upstream, "simulator_url": None}
        connection = {"url": server.url, "api_key": server.api_key}
        async with await AsyncSandbox.create(network="none", **connection) as sandbox:
            session = await sandbox.agent.start(prompt="@bash env | sort > /workspace/env.txt\n@say proxied")
            await asyncio.wait_for(session.done, 60)
            assert "proxied" in texts(await session.collect_events())

            received = httpx.get(upstream + "/_sim/requests").json()
            assert received and {r["api_key"] for r in received} == {REAL_KEY}
            search = await sandbox.exec.run(
                f"grep -rl {REAL_KEY} /workspace /home/user /tmp /run/cove 2>/dev/null; "
                f"cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c {REAL_KEY}"
            )
            assert search.stdout.strip() == "0", search.stdout
            env = await sandbox.files.read_text("env.txt")
            assert "ANTHROPIC_API_KEY=cove_session_" in env

            metered = (await session.refresh()).metered_usage
            assert metered.input_tokens > 0 and metered.output_tokens > 0
            await session.kill()
    finally:
        server.kill_all_sandboxes()
        server.kill()


async def test_a_stolen_session_token_is_refused_after_the_session_ends(server: CoveServer) -> None:
    connection = {"url": server.url, "api_key": server.api_key}
    async with await AsyncSandbox.create(**connection) as sandbox:
        session = await sandbox.agent.start(
            prompt="@bash printenv ANTHROPIC_API_KEY > /workspace/token; printenv ANTHROPIC_BASE_URL > /workspace/url"
        )
        await asyncio.wait_for(session.done, 60)
        token = (await sandbox.files.read_text("token")).strip()
        url = (await sandbox.files.read_text("url")).strip()
        probe = f"curl -s -o /dev/null -w '%{{http_code}}' -H 'x-api-key: {token}' {url}/v1/models"
        assert (await sandbox.exec.run(probe)).stdout == "200"
        wrong = f"curl -s -o /dev/null -w '%{{http_code}}' -H 'x-api-key: cove_session_forged' {url}/v1/models"
        assert (await sandbox.exec.run(wrong)).stdout == "401"
        await session.kill()
        assert (await sandbox.exec.run(probe)).stdout == "401"


@asynccontextmanager
async def proxy_on(tmp_path: Path, base_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, list[dict[str, int]]]]:
    """The proxy on a unix socket in front of ``base_url``, accepting the token ``cove_session_ok``; yields an
    HTTP client on that socket and the usage records the proxy reported."""
    recorded: list[dict[str, int]] = []

    async def resolve(token: str, uid: int) -> str | None:
        return "ses_test" if token == "cove_session_ok" and uid == 0 else None

    async def record(session_id: str, usage: dict[str, int]) -> None:
        recorded.append(usage)

    proxy = ModelProxy(resolve, Upstream(base_url), record)
    path = str(tmp_path / "model.sock")
    server = await asyncio.start_unix_server(
        lambda reader, writer: proxy.serve_connection(reader, writer, 0), path=path, limit=MAX_HEAD
    )
    transport = httpx.AsyncHTTPTransport(uds=path)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://model") as client:
            yield client, recorded
    finally:
        server.close()
        await proxy.close()


MESSAGE = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 100,
    "tools": [{"name": "Bash", "description": "runs a command", "input_schema": {"type": "object"}}],
    "messages": [{"role": "user", "content": "@say pong"}],
}


async def test_the_proxy_relays_and_meters_plain_and_streamed_answers_on_one_connection(
    upstream: str, tmp_path: Path
) -> None:
    async with proxy_on(tmp_path, upstream) as (client, recorded):
        headers = {"x-api-key": "cove_session_ok"}
        plain = await client.post("/v1/messages", json=MESSAGE, headers=headers)
        assert plain.status_code == 200 and plain.json()["content"][0]["text"] == "pong"
        async with client.stream("POST", "/v1/messages", json={**MESSAGE, "stream": True}, headers=headers) as sse:
            assert sse.headers["content-type"].startswith("text/event-stream")
            streamed = (await sse.aread()).decode()
        assert "message_stop" in streamed and "pong" in streamed
        # A chunked request body (no content-length) reaches the upstream whole.
        chunks = [json.dumps(MESSAGE).encode()[i : i + 7] for i in range(0, len(json.dumps(MESSAGE)), 7)]

        async def body() -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk

        chunked = await client.post("/v1/messages", content=body(), headers=headers)
        assert chunked.json()["content"][0]["text"] == "pong"
        received = httpx.get(upstream + "/_sim/requests").json()
        assert [r["api_key"] for r in received[-3:]] == ["cove-simulator"] * 3
    # Usage is recorded off the response path, in tasks of their own: closing the proxy waits for them.
    assert len(recorded) == 3
    assert all(usage["input_tokens"] > 0 and usage["output_tokens"] > 0 for usage in recorded)


async def test_the_proxy_refuses_unknown_tokens_and_reports_an_unreachable_upstream(tmp_path: Path) -> None:
    async with proxy_on(tmp_path, f"http://127.0.0.1:{free_port()}") as (client, recorded):
        refused = await client.post("/v1/messages", json=MESSAGE, headers={"x-api-key": "cove_session_forged"})
        assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"
        down = await client.post("/v1/messages", json=MESSAGE, headers={"authorization": "Bearer cove_session_ok"})
        assert down.status_code == 502 and "unreachable" in down.json()["error"]["message"]
    assert recorded == []


@pytest.mark.parametrize(
    "head",
    [
        b"POST /v1/messages HTTP/1.1\r\nx-api-key: cove_session_ok\nhost: x\r\n\r\n",  # bare LF
        b"POST /v1/messages HTTP/1.1\r\nx-api-key: cove_session_ok\rhost: x\r\n\r\n",  # bare CR
        b"POST /v1/messages HTTP/1.1\r\nx-api-key: cove_session_ok\x00\r\n\r\n",  # NUL
        b"POST /v1/messages HTTP/1.1\r\nx-api-key : cove_session_ok\r\n\r\n",  # space before the colon
        b"POST /v1/messages HTTP/1.1\r\nx-api-key: cove_session_ok\r\n folded\r\n\r\n",  # obsolete folding
        b"POST /v1/messages\x00 HTTP/1.1\r\nx-api-key: cove_session_ok\r\n\r\n",  # NUL in the start line
    ],
)
async def test_heads_a_lenient_parser_could_read_differently_are_refused(
    upstream: str, tmp_path: Path, head: bytes
) -> None:
    async with proxy_on(tmp_path, upstream) as (client, recorded):
        reader, writer = await asyncio.open_unix_connection(str(tmp_path / "model.sock"))
        writer.write(head)
        answer = await reader.read()  # the proxy answers and closes
        writer.close()
        assert answer.startswith(b"HTTP/1.1 400 ") and b"connection: close" in answer
        assert (await client.post("/v1/messages", json=MESSAGE, headers={"x-api-key": "cove_session_ok"})).is_success
    assert len(recorded) == 1


def test_handed_off_connections_are_served_and_anything_else_is_dropped(server: CoveServer) -> None:
    """What a sandbox's forwarder passes on ``handoff.sock``: a TCP connection is served by the proxy (its
    requests still need a session's token); a pipe or a unix socket is closed, and the next hand-off works."""
    handoff = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    handoff.connect(str(server.home / "model" / "handoff.sock"))
    read_end, write_end = os.pipe()
    unix_pair = socket.socketpair()
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    try:
        socket.send_fds(handoff, [b"c"], [read_end, unix_pair[0].fileno()])
        unix_pair[0].close()  # from here on only the server holds that end
        socket.send_fds(handoff, [b"c"], [accepted.fileno()])
        accepted.close()  # the server holds its own copy now
        client.settimeout(30)
        client.sendall(b"GET /v1/models HTTP/1.1\r\nhost: x\r\nx-api-key: not-a-session-token\r\n\r\n")
        assert client.recv(4096).startswith(b"HTTP/1.1 401 ")
        unix_pair[1].settimeout(30)
        assert unix_pair[1].recv(1) == b"", "a passed unix socket must be closed, not served"
    finally:
        for closable in (handoff, client, listener, *unix_pair):
            closable.close()
        os.close(read_end)
        os.close(write_end)
