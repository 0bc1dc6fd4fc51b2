"""Disk a sandbox holds that no walk of its files finds: files deleted while its processes keep them open.

A deleted file keeps its blocks until its last descriptor is closed, so a sandbox can write far past its disk
quota into files it has already removed (each one under the per-file limit, as many as it likes): ``du`` sees
none of them. The sandbox's processes (its cgroup) show them in ``/proc/<pid>/fd``; a ``stat`` through that link
reaches the inode without opening anything (never blocks, whatever the file is).
"""

from __future__ import annotations

import os
import stat


def deleted_but_open(pids: list[int], devices: set[int]) -> int:
    """Bytes of the regular files on ``devices`` that ``pids`` hold open after they were deleted."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for pid in pids:
        try:
            descriptors = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue  # exited meanwhile
        for descriptor in descriptors:
            try:
                st = os.stat(f"/proc/{pid}/fd/{descriptor}")
            except OSError:
                continue
            key = (st.st_dev, st.st_ino)
            if st.st_nlink == 0 and stat.S_ISREG(st.st_mode) and st.st_dev in devices and key not in seen:
                seen.add(key)
                total += st.st_blocks * 512
    return total
