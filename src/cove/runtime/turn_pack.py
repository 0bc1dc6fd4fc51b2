"""The contents a sandbox's turn store keeps, by SHA-256, in one append-only file.

One file rather than one per content: the first seal of a sandbox keeps up to 20,000 files and more, and making a
file each cost about 75 µs on ext4 (half of that seal's time); appending to one costs a write. ``pack`` holds the
contents back to back, ``pack.index`` a line per content (``digest offset length``), appended after the content
it names, so a crash in between leaves an index that names only what is whole (an entry past the pack's end is
dropped when loading). Blocking calls: the store's worker thread writes; any thread may ``read`` what is in.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

PACK = "pack"
INDEX = "pack.index"


class Pack:
    """``limit``: the bytes of content it may hold; a content that would pass it is not kept."""

    def __init__(self, directory: Path, limit: int) -> None:
        self._directory = directory
        self._limit = limit
        fd = os.open(directory / PACK, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self._size = os.fstat(fd).st_size
        where: dict[str, tuple[int, int]] = {}
        with contextlib.suppress(FileNotFoundError):
            for line in (directory / INDEX).read_text().splitlines():
                digest, offset, length = line.split()
                if int(offset) + int(length) <= self._size:
                    where[digest] = (int(offset), int(length))
        # The pack and its index as one value, replaced whole by a rewrite: a reader in another thread takes both
        # at once, never an offset of one pack to read in the other.
        self._current = (fd, where)
        self._unindexed: list[str] = []
        self._retired: list[int] = []  # packs a rewrite replaced (a reader may still be reading one)

    @staticmethod
    def clear(directory: Path) -> None:
        for name in (PACK, INDEX):
            (directory / name).unlink(missing_ok=True)

    @property
    def filling(self) -> bool:
        """Three quarters full: time to ``rewrite`` without what nothing refers to any more."""
        return self._size >= self._limit * 3 // 4

    def keep(self, data: bytes) -> str | None:
        """The content's digest, once it is in; None when the pack has no room left for it."""
        digest = hashlib.sha256(data).hexdigest()
        fd, where = self._current
        if digest in where:
            return digest
        if self._size + len(data) > self._limit:
            return None
        written = os.write(fd, data)
        if written != len(data):
            raise OSError(f"short write to the turn store's pack ({written} of {len(data)} bytes)")
        where[digest] = (self._size, len(data))
        self._size += len(data)
        self._unindexed.append(f"{digest} {self._size - len(data)} {len(data)}\n")
        return digest

    def flush(self) -> None:
        """Index what was kept since the last flush (after its content: a crash loses only unindexed content)."""
        if self._unindexed:
            with (self._directory / INDEX).open("a") as index:
                index.write("".join(self._unindexed))
            self._unindexed.clear()

    def rewrite(self, keep: set[str]) -> None:
        """Keep only the contents ``keep`` names (what the store still refers to), in a new pack that replaces
        this one. A reader in another thread may be reading the old one: its descriptor stays open until
        ``close``."""
        self.flush()
        fresh = os.open(self._directory / f"{PACK}.new", os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        where: dict[str, tuple[int, int]] = {}
        size = 0
        for digest in sorted(keep & self._current[1].keys()):
            data = self.read(digest)
            os.write(fresh, data)
            where[digest] = (size, len(data))
            size += len(data)
        index = "".join(f"{digest} {offset} {length}\n" for digest, (offset, length) in where.items())
        (self._directory / f"{INDEX}.new").write_text(index)
        os.replace(self._directory / f"{PACK}.new", self._directory / PACK)
        os.replace(self._directory / f"{INDEX}.new", self._directory / INDEX)
        self._retired.append(self._current[0])
        self._current, self._size = (fresh, where), size

    def read(self, digest: str) -> bytes:
        fd, where = self._current
        offset, length = where[digest]
        return os.pread(fd, length, offset)

    def close(self) -> None:
        self.flush()
        for fd in [self._current[0], *self._retired]:
            os.close(fd)
