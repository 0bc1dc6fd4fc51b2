"""Every route but /healthz needs the key; every error is JSON that says what to fix."""

from __future__ import annotations

import stat

import httpx
import pytest

from cove import AsyncSandbox, AuthError, SandboxNotFound
from tests.conftest import CoveServer


def test_admin_key_is_created_on_first_start_with_mode_0600(server: CoveServer) -> None:
    mode = stat.S_IMODE((server.home / "admin_key").stat().st_mode)
    assert mode == 0o600 and server.api_key.startswith("cove_")


@pytest.mark.parametrize("key", ["", "cove_wrong"])
def test_requests_without_a_valid_key_get_401(server: CoveServer, key: str) -> None:
    with server.http(api_key=key) as client:
        for method, path in [
            ("GET", "/v1/sandboxes"),
            ("POST", "/v1/sandboxes"),
            ("GET", "/v1/sandboxes/x"),
            ("POST", "/v1/sandboxes/x/exec"),
            ("GET", "/v1/sandboxes/x/files"),
        ]:
            reply = client.request(method, path, json={})
            assert reply.status_code == 401, path
            assert reply.json()["error"]["code"] == "unauthorized"
    assert httpx.get(server.url + "/healthz").status_code == 200


async def test_sdk_raises_typed_errors(server: CoveServer) -> None:
    with pytest.raises(AuthError):
        await AsyncSandbox.list(url=server.url, api_key="cove_wrong")
    with pytest.raises(SandboxNotFound) as error:
        await AsyncSandbox.connect("sbx_missing", url=server.url, api_key=server.api_key)
    assert error.value.status == 404 and error.value.code == "sandbox_not_found"


def test_validation_errors_name_the_field(server: CoveServer) -> None:
    with server.http() as client:
        reply = client.post("/v1/sandboxes", json={"limits": {"memory_mb": -5}})
        assert reply.status_code == 422
        body = reply.json()["error"]
        assert body["code"] == "validation_error" and "limits.memory_mb" in body["message"]
        reply = client.post("/v1/sandboxes", json={"network": "internet"})
        assert reply.status_code == 422 and "network" in reply.json()["error"]["message"]
        reply = client.post("/v1/sandboxes", json={"unknown_field": 1})
        assert reply.status_code == 422 and "unknown_field" in reply.json()["error"]["message"]
        reply = client.post("/v1/sandboxes", content=b"{not json", headers={"content-type": "application/json"})
        assert reply.status_code == 422
        reply = client.post("/v1/sandboxes", json={"cwd": "/etc"})
        assert reply.status_code == 422 and "cwd" in reply.json()["error"]["message"]


def test_unknown_ids_and_routes_get_404_json(server: CoveServer) -> None:
    with server.http() as client:
        for path in ("/v1/sandboxes/sbx_nope", "/v1/nothing-here"):
            reply = client.get(path)
            assert reply.status_code == 404 and "error" in reply.json()
        reply = client.post("/v1/sandboxes/sbx_nope/exec", json={"command": "true"})
        assert reply.status_code == 404 and reply.json()["error"]["code"] == "sandbox_not_found"


def test_openapi_describes_the_routes(server: CoveServer) -> None:
    spec = httpx.get(server.url + "/openapi.json").json()
    for path in ("/v1/sandboxes", "/v1/sandboxes/{sandbox_id}/exec", "/v1/sandboxes/{sandbox_id}/files"):
        assert path in spec["paths"]
