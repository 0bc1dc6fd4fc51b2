"""SIGKILL the server: every sandbox and every process in it keeps running and is reachable again."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from cove import AsyncSandbox
from tests.conftest import CoveServer, supervisor_pid


async def test_sandbox_and_its_running_loop_survive_server_sigkill(tmp_path: Path) -> None:
    server = CoveServer(tmp_path / "home")
    server.start()
    try:
        connection = {"url": server.url, "api_key": server.api_key}
        sandbox = await AsyncSandbox.create(**connection)
        loop = await sandbox.exec.start("i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.02; done")
        chunks = loop.__aiter__()
        seen = bytearray()
        while seen.count(b"\n") < 5:
            seen += (await anext(chunks)).data
        await loop.close()
        await sandbox.close()

        server.kill()
        server.start()

        again = await AsyncSandbox.connect(sandbox.id, **connection)
        assert again.info.state == "running"
        [process] = [p for p in await again.exec.list() if p.id == loop.process_id]
        assert process.running
        # The output written while no server was running is all there, in order, and it keeps coming.
        replay = await again.exec.attach(process.id)
        received = bytearray()
        async for chunk in replay:
            received += chunk.data
            if received.count(b"\n") >= process.stdout_bytes // 8 + 20:
                break
        lines = received.decode().splitlines()[:-1]
        assert lines == [f"tick-{i}" for i in range(1, len(lines) + 1)]
        assert len(lines) > 20
        assert (await again.exec.run("echo still here")).stdout == "still here\n"
        await again.kill()
        await again.close()
    finally:
        server.kill_all_sandboxes()
        server.kill()


async def test_sandboxes_that_died_while_the_server_was_down_are_marked_lost(tmp_path: Path) -> None:
    server = CoveServer(tmp_path / "home")
    server.start()
    try:
        connection = {"url": server.url, "api_key": server.api_key}
        sandbox = await AsyncSandbox.create(**connection)
        server.kill()
        pid = supervisor_pid(sandbox.id)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # the sandbox dies while no server is running
        server.start()
        listed = await AsyncSandbox.list(**connection)
        [info] = [s for s in listed if s.id == sandbox.id]
        assert info.state == "stopped" and info.stop_reason == "lost"
        await sandbox.close()
    finally:
        server.kill_all_sandboxes()  # and the warm pool, which would outlive a SIGKILLed server
        server.kill()
