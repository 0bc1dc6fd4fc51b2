"""The disk quota is a ``du`` of the sandbox's directory every few seconds (and RLIMIT_FSIZE per file). What
``du`` cannot see still takes the host's disk: files deleted while a process holds them open."""

from __future__ import annotations

import asyncio

from cove import AsyncSandbox, SandboxNotRunning
from tests.conftest import CoveServer, until

HOLD = """
import os, time
held = []
for i in range(8):  # 8 files of 12 MiB (each under the 16 MiB RLIMIT_FSIZE), deleted once open
    fd = os.open(f"/workspace/held-{i}", os.O_RDWR | os.O_CREAT, 0o600)
    os.unlink(f"/workspace/held-{i}")
    for _ in range(12):
        os.write(fd, os.urandom(1 << 20))
    os.fsync(fd)
    held.append(fd)
print(sum(os.fstat(fd).st_blocks * 512 for fd in held) >> 20, flush=True)
time.sleep(60)
"""


async def test_files_deleted_while_open_still_count_against_the_disk_quota(
    server: CoveServer, connection: dict[str, str]
) -> None:
    async with await AsyncSandbox.create(**connection, limits={"disk_mb": 16}) as attacker:
        await attacker.files.write("/tmp/hold.py", HOLD)
        await attacker.exec.background("python3 /tmp/hold.py > /tmp/held 2>&1")
        held = ""
        for _ in range(200):
            try:
                held = (await attacker.exec.run("cat /tmp/held")).stdout.strip()
            except SandboxNotRunning:
                break  # the watchdog was quicker than the writer
            if held:
                assert int(held) >= 96  # MiB of the host's disk, six times the quota
                break
            await asyncio.sleep(0.1)
        # The watchdog looks every 5 s: give it three passes to notice.
        info = await until(attacker, lambda info: info.state != "running", within=20)
        assert info.stop_reason == "disk_limit"
