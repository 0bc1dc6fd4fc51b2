"""A checkpoint's seal reads the sandbox's overlay upper as root. When nothing changed shape since the last seal,
it looks only at the entries inotify named and at the files the sandbox has mapped shared-writable, as
``/proc/<pid>/maps`` names them. A mapping outlives its file: once the file and its directory are deleted,
``maps`` still names the old path (``… (deleted)``), and a symlink can now stand where the directory was. The
seal then resolved that path through the sandbox's symlink, on the host, and made what it found there in the new
layer through the same (copied) link: with a relative link, whose target differs between the upper and the
layer, root created a directory outside ``$COVE_HOME``."""

from __future__ import annotations

import asyncio
import shutil

from cove import AsyncSandbox
from tests.conftest import CoveServer
from tests.security.conftest import sh

# Maps /workspace/d/sandboxes shared-writable, deletes it and its directory, and puts a link at d that climbs
# five levels: from the upper ($HOME/sandboxes/<id>/fs/upper/workspace) that is $HOME; from the new layer
# ($HOME/layers/<layer>/workspace) it is $HOME/../.. — so "d/sandboxes" is $HOME/sandboxes (a directory,
# whose ctime moves whenever a sandbox is made) on one side and $HOME/../../sandboxes on the other.
MAP_AND_SWAP = """
import mmap, os, time
os.makedirs("/workspace/d")
with open("/workspace/d/sandboxes", "wb") as made:
    made.write(b"\\0" * 4096)
fd = os.open("/workspace/d/sandboxes", os.O_RDWR)
mapping = mmap.mmap(fd, 4096)
os.close(fd)
os.unlink("/workspace/d/sandboxes")
os.rmdir("/workspace/d")
os.symlink("../../../../..", "/workspace/d")
print("ready", flush=True)
time.sleep(120)
"""


async def test_a_seal_never_follows_a_sandbox_link_onto_the_host(
    server: CoveServer, attacker: AsyncSandbox, connection: dict[str, str]
) -> None:
    outside = server.home.parent.parent / "sandboxes"
    assert not outside.exists()
    await attacker.files.write("/tmp/swap.py", MAP_AND_SWAP)
    await attacker.exec.background("python3 /tmp/swap.py > /tmp/swap.out 2>&1")
    for _ in range(100):
        if "ready" in await sh(attacker, "cat /tmp/swap.out 2>/dev/null || true"):
            break
        await asyncio.sleep(0.1)
    await attacker.checkpoint()  # a full scan: from now on the seal trusts inotify and the mappings
    async with await AsyncSandbox.create(**connection):
        # The pool refills behind the claim: $HOME/sandboxes gets a new entry, its ctime moves.
        with server.http() as client:
            assert client.get("/v1/pool", params={"wait": 30}).json()["ready"], "the warm pool did not refill"
    try:
        await attacker.checkpoint()
        assert not outside.exists(), f"root created {outside} through the sandbox's link"
    finally:
        if outside.exists() and outside.is_dir():
            shutil.rmtree(outside)
