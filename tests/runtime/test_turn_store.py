"""TurnStore on a directory of the host (uid 0 owns it, as root made it), with a base of nothing: the states it
records at seals, and the bounds on what it keeps — contents collected once nothing names them, the oldest
records dropped past their budget."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cove.runtime import turn_pack, turn_store
from cove.runtime.storage import Located
from cove.runtime.turn_store import TurnStore


class NoBase:
    def kept_now(self) -> Iterator[tuple[str, Located | None]]:
        return iter(())

    def locate(self, path: str) -> Located | None:
        return None

    def close(self) -> None:
        pass


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[Path, TurnStore]]:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    opened = TurnStore(tmp_path / "store", workspace, os.getuid(), NoBase())
    opened.begin()
    yield workspace, opened
    opened.close()


def test_states_at_seals(store: tuple[Path, TurnStore]) -> None:
    workspace, turns = store
    start = turns.seal()
    (workspace / "a.txt").write_text("one\n")
    middle = turns.seal()
    (workspace / "a.txt").write_text("two\n")
    end = turns.seal()
    [(path, before, after)] = turns.changes(start, end)
    assert path == "a.txt" and before is None and after is not None
    assert turns.content(after.digest or "") == b"two\n"
    [(_path, before, _after)] = turns.changes(middle, end)
    assert before is not None and turns.content(before.digest or "") == b"one\n"
    assert turns.changes(end, turns.seal()) == []


def test_collect_keeps_what_is_named_and_drops_the_rest(store: tuple[Path, TurnStore]) -> None:
    workspace, turns = store
    pack = workspace.parent / "store" / turn_pack.PACK
    for round_ in range(20):
        (workspace / "churn.txt").write_bytes(os.urandom(1000) + b"%d" % round_)
        turns.seal()
    (workspace / "kept.txt").write_text("still here\n")
    last = turns.seal()
    before = pack.stat().st_size
    turns.collect(keep_from=last)
    after = pack.stat().st_size
    assert after < before / 10
    [(_path, _before, state)] = [change for change in turns.changes(0, last) if change[0] == "kept.txt"]
    assert state is not None and turns.content(state.digest or "") == b"still here\n"


def test_the_oldest_records_go_past_their_budget(
    store: tuple[Path, TurnStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    _workspace, turns = store
    monkeypatch.setattr(turn_store, "MAX_RECORD_BYTES", 10_000)
    for turn in range(1, 11):
        turns.save_record("ses_x", turn, {"turn": turn, "changes": [], "padding": "x" * 3000})
    kept = [turn for turn in range(1, 11) if turns.load_record("ses_x", turn) is not None]
    assert kept == [8, 9, 10]
