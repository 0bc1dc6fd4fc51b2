"""Published ports are stored: a restarted server serves them again, under the same URLs and tokens, and forgets
those of sandboxes that died while it was down. A checkpoint restored in place keeps them too."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx

from cove import AsyncSandbox
from tests.conftest import CoveServer, supervisor_pid
from tests.preview.conftest import APP_PORT, TOKEN_HEADER, start_echo_app, until_listening


async def test_ports_survive_a_server_restart_and_go_with_sandboxes_that_died(tmp_path: Path) -> None:
    server = CoveServer(tmp_path / "home")
    server.start()
    try:
        connection = {"url": server.url, "api_key": server.api_key}
        kept = await AsyncSandbox.create(**connection)
        await start_echo_app(kept)
        preview = await kept.ports.expose(APP_PORT)
        await until_listening(preview)
        dying = await AsyncSandbox.create(**connection)
        await dying.ports.expose(APP_PORT, public=True)

        server.kill()
        pid = supervisor_pid(dying.id)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        server.start()

        again = await AsyncSandbox.connect(kept.id, **connection)
        assert await again.ports.list() == [preview]
        async with httpx.AsyncClient(headers={TOKEN_HEADER: preview.token}) as client:
            assert (await client.get(preview.url + "echo")).json()["path"] == "/echo"
        gone = await AsyncSandbox.connect(dying.id, **connection)
        assert gone.info.state == "stopped" and await gone.ports.list() == []
        for handle in (kept, dying, again, gone):
            await handle.close()
    finally:
        server.kill_all_sandboxes()
        server.kill()


async def test_a_restore_in_place_keeps_the_sandboxs_ports(connection: dict[str, str]) -> None:
    async with await AsyncSandbox.create(**connection) as sandbox:
        checkpoint = await sandbox.checkpoint()
        preview = await sandbox.ports.expose(APP_PORT)
        await sandbox.restore(checkpoint.id)
        assert await sandbox.ports.list() == [preview]
        await start_echo_app(sandbox)  # processes are not part of a checkpoint: the app starts again
        await until_listening(preview)
