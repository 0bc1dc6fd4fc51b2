"""``cove serve`` where a server already listens: it says so and leaves that server and its sandboxes alone."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import CoveServer


def test_a_second_server_on_a_busy_port_stops_before_touching_anything(server: CoveServer) -> None:
    with server.http() as client:
        sandbox = client.post("/v1/sandboxes", json={}).json()
        second = subprocess.run(
            [sys.executable, "-m", "cove", "serve", "--port", str(server.port)],
            env=server.env,  # the same home too: the mistake of starting a server twice
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert f"cannot listen on 127.0.0.1:{server.port}" in second.stderr and "cove sandbox ls" in second.stderr
        assert "Application startup" not in second.stderr  # nothing was recovered or drained
        assert client.get(f"/v1/sandboxes/{sandbox['id']}").json()["state"] == "running"
        client.delete(f"/v1/sandboxes/{sandbox['id']}")
