"""The model proxy from a hostile sandbox's side: only the model API is forwarded, forwarding headers are
dropped, a session's token works only from its own sandbox, and a flood of descriptors on the shared hand-off
socket is bounded."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from cove import AsyncSandbox
from cove.modelproxy.proxy import MAX_HEAD, ModelProxy, Upstream
from tests.conftest import CoveServer
from tests.security.conftest import idle_session, open_descriptors, server_answers, sh

TOKEN = "cove_session_ok"
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@asynccontextmanager
async def recording_upstream() -> AsyncIterator[tuple[str, list[bytes]]]:
    """An 'upstream' that answers every request 200 and keeps each request head as received."""
    heads: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        heads.append(head)
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0
        )
        await reader.readexactly(length)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", heads
    finally:
        server.close()


@asynccontextmanager
async def proxy_at(upstream: str, uid: int) -> AsyncIterator[Callable[[], Awaitable[Connection]]]:
    """The proxy in front of ``upstream``, with a way to open connections to it as handed over from the sandbox
    whose uid is ``uid``; ``TOKEN`` is the token of a session in the sandbox of uid 1000."""

    async def resolve(token: str, peer: int) -> str | None:
        return "ses_test" if token == TOKEN and peer == 1000 else None

    async def record(_session: str, _usage: dict[str, int]) -> None:
        return None

    proxy = ModelProxy(resolve, Upstream(upstream), record)
    server = await asyncio.start_server(lambda r, w: proxy.serve_connection(r, w, uid), "127.0.0.1", 0, limit=MAX_HEAD)
    opened: list[asyncio.StreamWriter] = []

    async def connect() -> Connection:
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
        opened.append(writer)
        return reader, writer

    try:
        yield connect
    finally:
        for writer in opened:
            writer.close()
        server.close()
        await proxy.close()


@asynccontextmanager
async def proxy_client(upstream: str, uid: int) -> AsyncIterator[Connection]:
    """One connection to a proxy of its own (see ``proxy_at``)."""
    async with proxy_at(upstream, uid) as connect:
        yield await connect()


async def _ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: str) -> bytes:
    writer.write(head.replace("\n", "\r\n").encode())
    answer = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in answer.split(b"\r\n") if line.lower().startswith(b"content-length")), 0
    )
    return answer + await reader.readexactly(length)


@pytest.mark.parametrize(
    "target",
    [
        "/v1/organizations/api_keys",
        "/v1/messages/batches",
        "/v1/files",
        "/v1/../admin",
        "/v1/messages/../../admin",
        "//other.host/x",
        "/v1//messages",
        "/v1/messages%2F..%2Fbatches",
        "/_sim/requests",
        "/v1/messages?x=%00",
    ],
)
async def test_only_the_model_api_is_forwarded(target: str) -> None:
    async with recording_upstream() as (upstream, heads):
        for method in ("POST", "GET"):
            async with proxy_client(upstream, 1000) as (reader, writer):
                head = f"{method} {target} HTTP/1.1\nhost: x\nx-api-key: {TOKEN}\ncontent-length: 0\n\n"
                answer = await _ask(reader, writer, head)
                assert answer.startswith(b"HTTP/1.1 404 ") and b"forwards only" in answer
        assert heads == []  # nothing reached the upstream


async def test_forwarding_headers_are_dropped_and_the_real_key_put_in() -> None:
    async with recording_upstream() as (upstream, heads), proxy_client(upstream, 1000) as (reader, writer):
        forged = (
            "x-forwarded-for: 10.0.0.1\nx-forwarded-host: evil\nforwarded: for=1.2.3.4\nx-real-ip: 1.2.3.4\nvia: x\n"
        )
        head = f"POST /v1/messages?beta=true HTTP/1.1\nhost: x\nx-api-key: {TOKEN}\n{forged}content-length: 2\n\n{{}}"
        assert (await _ask(reader, writer, head)).startswith(b"HTTP/1.1 200 ")
    [received] = heads
    assert received.startswith(b"POST /v1/messages?beta=true HTTP/1.1\r\n")
    lowered = received.lower()
    for name in (b"x-forwarded-for", b"x-forwarded-host", b"forwarded:", b"x-real-ip", b"via:"):
        assert name not in lowered
    assert TOKEN.encode() not in received and b"x-api-key: cove-simulator" in lowered


async def test_a_token_is_refused_from_any_other_sandbox() -> None:
    async with recording_upstream() as (upstream, heads), proxy_client(upstream, 1001) as (reader, writer):
        answer = await _ask(reader, writer, f"GET /v1/models HTTP/1.1\nhost: x\nx-api-key: {TOKEN}\n\n")
        assert answer.startswith(b"HTTP/1.1 401 ")
    assert heads == []


async def test_a_stolen_token_opens_nothing_in_another_sandbox(attacker: AsyncSandbox, victim: AsyncSandbox) -> None:
    await idle_session(victim)
    # Any process of the sandbox can read its runner's environment (the same uid): the token is no secret there.
    environ = "cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | sed -n 's/^ANTHROPIC_API_KEY=//p'"
    token = (await sh(victim, environ)).split()[0]
    assert token.startswith("cove_session_")
    await idle_session(attacker)  # so that the attacker's forwarder is in place
    url = (await sh(attacker, "echo http://127.0.0.1:$(cat /run/cove/model-port)")).strip()
    probe = f"curl -s -o /dev/null -w '%{{http_code}}' -H 'x-api-key: {token}' {url}/v1/models"
    assert await sh(attacker, probe) == "401"
    assert await sh(victim, probe.replace(url, "http://127.0.0.1:$(cat /run/cove/model-port)")) == "200"


FLOOD = textwrap.dedent(
    """
    import os, socket, time
    pipes = [os.pipe() for _ in range(120)]
    fds = [fd for pair in pipes for fd in pair][:250]
    listener = socket.create_server(("127.0.0.1", 0))
    deadline = time.monotonic() + 3
    channels = []
    sent = 0
    while time.monotonic() < deadline:
        try:
            channel = socket.socket(socket.AF_UNIX)
            channel.connect("/run/cove-model/handoff.sock")
            channels.append(channel)
            for _ in range(50):
                socket.send_fds(channel, [b"c"], fds)
                socket.send_fds(channel, [b"c"], [listener.fileno()])
                sent += 1
        except OSError:
            pass
    print(sent)
    """
)


async def test_a_descriptor_flood_on_the_hand_off_socket_is_bounded(
    server: CoveServer, attacker: AsyncSandbox, victim: AsyncSandbox
) -> None:
    bystander = await idle_session(victim)
    before = open_descriptors(server)
    await attacker.files.write("flood.py", FLOOD)
    sent = int(await sh(attacker, "python3 flood.py", timeout=60))
    assert sent > 100  # thousands of descriptors were offered
    assert open_descriptors(server) < before + 50
    assert server_answers(server)
    # Everyone else is served: an exec, a create, and another sandbox's agent turn.
    assert (await victim.exec.run("echo fine")).stdout == "fine\n"
    await bystander.send_prompt("@say unharmed")
    done = await asyncio.wait_for(bystander.done, 60)
    assert done["type"] == "turn_complete"


async def test_guessing_tokens_in_a_loop_is_slowed_down() -> None:
    """Each unknown token costs the server a lookup: past a few refusals a second, a sandbox gets 429s unlooked."""
    statuses = []
    async with recording_upstream() as (upstream, heads), proxy_at(upstream, 1000) as connect:
        for attempt in range(40):
            answer = await _ask(*await connect(), f"GET /v1/models HTTP/1.1\nhost: x\nx-api-key: guess-{attempt}\n\n")
            statuses.append(int(answer.split(b" ")[1]))
    assert statuses[0] == 401 and 429 in statuses
    assert heads == []
