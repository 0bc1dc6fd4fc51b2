"""The real model key never enters a sandbox; the proxy swaps it in, and meters each session."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cove import AsyncSandbox
from cove.testing import simulator_process
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
