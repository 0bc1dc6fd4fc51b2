"""The runner's control socket is the sandbox's: a process of the sandbox can bind its own listener at
``control.sock`` (same uid, so the peer check passes) and answer the server's commands however it likes. Anything
malformed must make the session unavailable (503), never a server error (500)."""

from __future__ import annotations

import asyncio

import pytest

from cove import AsyncSandbox
from tests.conftest import CoveServer
from tests.security.conftest import idle_session

IMPOSTOR = """
import os, socket, sys
path, reply = sys.argv[1], sys.argv[2]
os.unlink(path)
listener = socket.socket(socket.AF_UNIX)
listener.bind(path)
listener.listen(8)
print("listening", flush=True)
while True:
    connection, _ = listener.accept()
    connection.recv(65536)
    if reply == "deep":  # RecursionError in json.loads, not a ValueError
        connection.sendall(b"[" * 100_000 + b"\\n")
    else:  # a line over the 32 MiB limit: readline raises ValueError
        connection.sendall(b"x" * (33 * 1024 * 1024))
    connection.close()
"""


@pytest.mark.parametrize("reply", ["deep", "long"])
async def test_a_control_reply_nested_too_deep_or_too_long_is_a_503(own_server: CoveServer, reply: str) -> None:
    connection = {"url": own_server.url, "api_key": own_server.api_key}
    async with await AsyncSandbox.create(**connection) as attacker:
        session = await idle_session(attacker)
        await attacker.files.write("/tmp/impostor.py", IMPOSTOR)
        control = f"/run/cove/agents/{session.session_id}/control.sock"
        await attacker.exec.background(f"python3 /tmp/impostor.py {control} {reply} > /tmp/impostor.out")
        for _ in range(100):
            if "listening" in (await attacker.exec.run("cat /tmp/impostor.out")).stdout:
                break
            await asyncio.sleep(0.1)
        with own_server.http() as client:
            answer = client.post(
                f"/v1/sandboxes/{attacker.id}/agent/{session.session_id}/prompt", json={"text": "hello"}
            )
        assert answer.status_code == 503, answer.text
