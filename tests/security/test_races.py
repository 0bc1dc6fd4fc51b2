"""The files API while the sandbox swaps links under it: no read ever returns what lies outside the sandbox's
roots, no write lands there, and no temporary file is left behind."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from cove import AsyncSandbox, CoveError
from tests.security.conftest import sh

ROUNDS = 300


@contextlib.asynccontextmanager
async def swapping(sandbox: AsyncSandbox, name: str, outside: str, inside: str) -> AsyncIterator[None]:
    """While the block runs, the sandbox swaps /workspace/``name`` between a link to ``outside`` and one to
    ``inside``, as fast as it can."""
    swap = f"ln -sfn {{}} {name}.new && mv -T {name}.new {name}"
    script = f"cd /workspace; while true; do {swap.format(outside)}; {swap.format(inside)}; done"
    swapper = await sandbox.exec.background(script)
    try:
        yield
    finally:
        await sandbox.exec.kill(swapper.id)


async def test_reads_racing_a_link_swap_never_leave_the_roots(attacker: AsyncSandbox) -> None:
    outside = await sh(attacker, "cat /etc/hostname /etc/os-release")
    await sh(attacker, "cd /workspace && printf inside > real && ln -s real x")
    seen: set[str] = set()
    async with swapping(attacker, "x", "/etc/os-release", "real"):
        for _ in range(ROUNDS):
            try:
                seen.add((await attacker.files.read("x")).decode())
            except CoveError as refused:
                assert refused.code in ("path_outside_sandbox", "file_not_found"), refused
                seen.add(refused.code)
    assert "inside" in seen and "path_outside_sandbox" in seen  # the race was really run both ways
    assert not any(text and text in outside for text in seen - {"inside", "path_outside_sandbox"}), seen


async def test_writes_racing_a_directory_swap_never_land_outside_the_roots(attacker: AsyncSandbox) -> None:
    await sh(attacker, "mkdir -p /workspace/real && ln -s real /workspace/d")
    outcomes: set[str] = set()
    async with swapping(attacker, "d", "/run/cove", "real"):
        for n in range(ROUNDS):
            try:
                await attacker.files.write(f"d/upload-{n}", b"payload")
                outcomes.add("written")
            except CoveError as refused:
                assert refused.code == "path_outside_sandbox", refused
                outcomes.add(refused.code)
    assert outcomes == {"written", "path_outside_sandbox"}
    assert await sh(attacker, "ls -a /run/cove | grep -c upload || true") == "0\n"
    assert await sh(attacker, "ls -a /workspace/real | grep -c cove-upload || true") == "0\n"


async def test_a_fifo_or_a_device_is_never_read_by_the_files_api(attacker: AsyncSandbox) -> None:
    await sh(attacker, "mkfifo /workspace/pipe && ln -s /dev/zero /workspace/zero && ln -s /dev/urandom /tmp/rand")
    for path in ("pipe", "zero", "/tmp/rand"):
        try:
            await asyncio.wait_for(attacker.files.read(path), 10)
        except CoveError as refused:
            assert refused.code in ("not_a_regular_file", "path_outside_sandbox"), refused
        else:
            raise AssertionError(f"{path} was read")
    assert (await attacker.exec.run("echo responsive")).stdout == "responsive\n"
