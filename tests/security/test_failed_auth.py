"""Guessing keys and tokens is rate-limited per client address: past the server's failures a minute, the address
gets 429 ``rate_limited`` with ``Retry-After`` — good credentials included, so that a guess then tells nothing —
on REST and WebSocket handshakes alike, while other addresses go on as before."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.conftest import CoveServer, serving

FAILURES = 5
GUESSER = "127.0.0.3"


@pytest.fixture
def strict_server(tmp_path: Path) -> Iterator[CoveServer]:
    with serving(tmp_path / "home", {"COVE_AUTH_FAILURES_PER_MINUTE": str(FAILURES)}) as server:
        yield server


def _from(address: str, server: CoveServer, key: str | None) -> httpx.Client:
    """A client whose connections come from ``address`` (any of 127.0.0.0/8 reaches the server on loopback)."""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=server.url, headers=headers, transport=httpx.HTTPTransport(local_address=address))


async def test_failed_authentications_are_limited_per_address(strict_server: CoveServer) -> None:
    # Guesses come from 127.0.0.3: the fixture's clean-up, from 127.0.0.1, must not be limited.
    with _from(GUESSER, strict_server, None) as anonymous:
        for _ in range(3 * FAILURES):  # no credential at all is not a guess
            assert anonymous.get("/v1/sandboxes").status_code == 401
    with _from(GUESSER, strict_server, "cove_guess") as guesser:
        for _ in range(FAILURES):
            assert guesser.get("/v1/sandboxes").json()["error"]["code"] == "unauthorized"
        limited = guesser.get("/v1/sandboxes")
        assert (limited.status_code, limited.json()["error"]["code"]) == (429, "rate_limited")
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        forged = "cove_tok_0123456789abcdef.9999999999.AAAA"
        assert guesser.get("/v1/sandboxes", headers={"authorization": f"Bearer {forged}"}).status_code == 429
    with _from(GUESSER, strict_server, strict_server.api_key) as admin:
        assert admin.get("/v1/sandboxes").status_code == 429  # while limited, no credential is looked at
    with pytest.raises(InvalidStatus) as refused:
        url = strict_server.url.replace("http", "ws") + "/v1/sandboxes/sbx_x/exec/ws"
        headers = {"authorization": f"Bearer {strict_server.api_key}"}
        async with connect(url, additional_headers=headers, local_addr=(GUESSER, 0)):
            pass
    assert refused.value.response.status_code == 429
    assert refused.value.response.headers["retry-after"].isdigit()
    assert json.loads(refused.value.response.body)["error"]["code"] == "rate_limited"

    with _from("127.0.0.2", strict_server, strict_server.api_key) as elsewhere:
        assert elsewhere.get("/v1/sandboxes").status_code == 200
    with _from("127.0.0.2", strict_server, "cove_guess") as other_guesser:
        assert other_guesser.post("/v1/sandboxes", json={}).status_code == 401
    with _from("127.0.0.2", strict_server, strict_server.api_key) as admin:
        trail = admin.get("/v1/audit", params={"action": "sandboxes.create_sandbox"}).json()["entries"]
    # The trail names each attempt's address; the limited ones (GETs) are reads, not in it.
    assert [(e["by"], e["status"], e["client"]) for e in trail] == [(None, 401, "127.0.0.2")]


def test_forged_tokens_are_refused_before_any_lookup(strict_server: CoveServer) -> None:
    """A token's signature is checked first: one whose id is real but whose signature is not opens nothing."""
    with strict_server.http() as admin:
        sandbox = admin.post("/v1/sandboxes", json={"network": "none"}).json()["id"]
        real = admin.post("/v1/tokens", json={"sandbox_id": sandbox, "scopes": ["read"]}).json()["token"]
    token_id, expiry, _signature = real.rsplit(".", 2)
    for forged in (f"{token_id}.{expiry}.{'A' * 43}", f"{token_id}.{int(expiry) + 3600}.{_signature}"):
        reply = httpx.get(f"{strict_server.url}/v1/sandboxes/{sandbox}", headers={"authorization": f"Bearer {forged}"})
        assert reply.status_code == 401
    assert httpx.get(
        f"{strict_server.url}/v1/sandboxes/{sandbox}", headers={"authorization": f"Bearer {real}"}
    ).is_success


def test_a_previews_stale_cookie_is_refused_but_not_counted_a_wrong_token_is(strict_server: CoveServer) -> None:
    """Cove left the cookie with the browser and it goes stale by itself (its token expires, its port is closed):
    a page polling with one must not lock its address out of the API. A token sent any other way is a guess."""
    with _from("127.0.0.1", strict_server, strict_server.api_key) as admin:
        sandbox = admin.post("/v1/sandboxes", json={"network": "none"}).json()["id"]
        preview = admin.post(f"/v1/sandboxes/{sandbox}/ports", json={"port": 8000}).json()
        stale = admin.post(f"/v1/sandboxes/{sandbox}/ports", json={"port": 8001}).json()["token"]
        admin.delete(f"/v1/sandboxes/{sandbox}/ports/8001").raise_for_status()  # which revokes its token
    with _from("127.0.0.4", strict_server, None) as page:
        cookie = {"cookie": f"cove_preview_token={stale}"}
        for _ in range(3 * FAILURES):
            reply = page.get(preview["url"], headers=cookie)
            assert (reply.status_code, reply.json()["error"]["code"]) == (401, "unauthorized")
        for _ in range(FAILURES):
            assert page.get(preview["url"], headers={"x-cove-preview-token": stale}).status_code == 401
        limited = page.get(preview["url"], headers={"x-cove-preview-token": preview["token"]})
        assert (limited.status_code, limited.json()["error"]["code"]) == (429, "rate_limited")
