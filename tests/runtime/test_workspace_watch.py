"""WorkspaceWatch on a directory of the host (uid 0 owns it, as root made it): what each kind of change makes it
report, and what makes it give up (the caller then walks)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cove.runtime import safe_open
from cove.runtime.workspace_watch import Unfollowable, WorkspaceWatch


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[tuple[Path, WorkspaceWatch]]:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("one\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "index").write_text("git's\n")
    with safe_open.opened(safe_open.open_root(tmp_path.parent)) as parent:
        root = safe_open.open_directory(parent, tmp_path.name, os.getuid())
    watch = WorkspaceWatch(root, os.getuid())
    assert {path: seen.kind for path, seen in watch.start()} == {"src/app.py": "f"}  # .git is not walked
    yield tmp_path, watch
    watch.close()
    os.close(root)


def test_nothing_changed_is_an_empty_drain(tree: tuple[Path, WorkspaceWatch]) -> None:
    _root, watch = tree
    assert watch.drain() == set()
    assert watch.drain() == set()


def test_writes_creations_removals_and_new_directories(tree: tuple[Path, WorkspaceWatch]) -> None:
    root, watch = tree
    (root / "src" / "app.py").write_text("two\n")
    (root / "notes.txt").write_text("new\n")
    (root / "new" / "deep").mkdir(parents=True)
    (root / "new" / "deep" / "file").write_text("made before its directory was watched\n")
    (root / ".git" / "index").write_text("ignored\n")
    assert watch.drain() == {"src/app.py", "notes.txt", "new/deep/file"}
    (root / "new" / "deep" / "later").write_text("the new directory is watched now\n")
    (root / "notes.txt").unlink()
    (root / "src" / "app.py").rename(root / "src" / "main.py")
    assert watch.drain() == {"new/deep/later", "notes.txt", "src/app.py", "src/main.py"}


def test_a_directory_moved_cannot_be_followed(tree: tuple[Path, WorkspaceWatch]) -> None:
    root, watch = tree
    (root / "src").rename(root / "lib")
    with pytest.raises(Unfollowable):
        watch.drain()
