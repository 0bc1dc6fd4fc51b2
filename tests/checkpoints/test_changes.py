"""runtime.changes on a real directory tree: what the watch names, when it gives up, and mapped files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cove.runtime import changes
from cove.runtime.changes import ChangeWatch, mapped_for_writing


def test_the_watch_names_edited_entries_and_gives_up_on_a_change_of_shape(tmp_path: Path) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    for name in ("d/a", "d/b", "d/e/c", "top"):
        (tmp_path / name).write_text("x")
    watch = ChangeWatch(tmp_path)
    assert watch.changed(set()) is None, "no watch yet: everything must be scanned"
    watch.rewatch([b"d", b"d/e"])
    assert watch.changed(set()) == set()

    with open(tmp_path / "d" / "a", "a") as edited:
        edited.write("more")
    os.chmod(tmp_path / "d" / "e" / "c", 0o600)
    os.utime(tmp_path / "top", ns=(0, 0))
    assert watch.changed({b"d/b"}) == {b"d/a", b"d/e/c", b"top", b"d/b"}
    assert watch.changed(set()) == set(), "events are reported once"
    assert watch.changed(None) is None, "unknown mappings: everything must be scanned"

    (tmp_path / "d" / "new").write_text("y")
    assert watch.changed(set()) is None
    watch.rewatch([b"d", b"d/e"])
    (tmp_path / "d" / "e" / "c").rename(tmp_path / "d" / "c")
    assert watch.changed(set()) is None

    watch.rewatch([b"d", b"d/e"])
    watch.invalidate()
    assert watch.changed(set()) is None, "a discarded seal makes the next one scan everything"
    watch.close()


def test_out_of_inotify_instances_every_seal_scans_and_the_operator_is_told_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(changes, "open_instance", lambda: -1)  # what inotify_init1 answers past the limit
    monkeypatch.setattr(changes, "_warned", set())
    watches = [ChangeWatch(tmp_path) for _ in range(3)]
    for watch in watches:
        watch.rewatch([])
        (tmp_path / "f").write_text("x")
        assert watch.changed(set()) is None
    warnings = [r.getMessage() for r in caplog.records if r.name == "cove.checkpoints"]
    assert len(warnings) == 1 and "fs.inotify.max_user_instances" in warnings[0]


def test_files_mapped_shared_and_writable_are_found_in_the_upper(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("sub/shared", "private", "readonly"):
        (tmp_path / name).write_bytes(b"\0" * 4096)
    script = (
        "import mmap, sys\n"
        "maps = []\n"
        "for name, flags, prot in (('sub/shared', mmap.MAP_SHARED, mmap.PROT_WRITE | mmap.PROT_READ),"
        " ('private', mmap.MAP_PRIVATE, mmap.PROT_WRITE | mmap.PROT_READ),"
        " ('readonly', mmap.MAP_SHARED, mmap.PROT_READ)):\n"
        "    with open(name, 'r+b') as f:\n"
        "        maps.append(mmap.mmap(f.fileno(), 0, flags=flags, prot=prot))\n"
        "print('ready', flush=True)\n"
        "sys.stdin.read()\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == b"ready\n"
        inside = os.fsencode(tmp_path)
        assert mapped_for_writing([process.pid], {inside: b"workspace"}) == {b"workspace/sub/shared"}
        assert mapped_for_writing([process.pid], {b"/elsewhere": b"workspace"}) == set()
    finally:
        process.kill()
        process.wait()
