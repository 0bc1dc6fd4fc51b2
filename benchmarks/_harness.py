"""Shared helpers for the benchmarks: statistics, tables, machine facts, and a real ``cove serve`` to measure.

The server is started the way the test suite starts one (``tests/conftest.py``): its own process on a free port
with a throw-away ``COVE_HOME``. It is reimplemented here rather than imported, so benchmarks never depend on the
test package.
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

from cove.testing import ServerProcess

ROOT = Path(__file__).resolve().parent.parent


# --- statistics -------------------------------------------------------------------------------------------------


def percentile(samples: Sequence[float], pct: float) -> float:
    """The ``pct``-th percentile (0..100) with linear interpolation between closest ranks."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Stats:
    """A sample of durations in seconds, summarised in milliseconds."""

    samples: tuple[float, ...]

    @classmethod
    def of(cls, samples: Sequence[float]) -> Stats:
        return cls(tuple(samples))

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def p50(self) -> float:
        return percentile(self.samples, 50) * 1000

    @property
    def p95(self) -> float:
        return percentile(self.samples, 95) * 1000

    @property
    def p99(self) -> float:
        return percentile(self.samples, 99) * 1000

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples) * 1000 if self.samples else math.nan

    @property
    def min(self) -> float:
        return min(self.samples) * 1000 if self.samples else math.nan

    @property
    def max(self) -> float:
        return max(self.samples) * 1000 if self.samples else math.nan


def ms(value: float, digits: int = 2) -> str:
    return "—" if math.isnan(value) else f"{value:.{digits}f}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# --- tables -----------------------------------------------------------------------------------------------------


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    out = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in cells]
    out.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(out)


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    print(f"\n{title}\n{text_table(headers, rows)}", flush=True)


# --- the machine ------------------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, str]:
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": str(os.cpu_count() or "?"),
        "cpu": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "bwrap": bwrap_version(),
    }


def bwrap_path(env: dict[str, str] | None = None) -> str:
    """The bwrap the server will use: the first on its PATH, as ``BwrapDriver`` resolves it."""
    path = (env or os.environ).get("PATH")
    return shutil.which("bwrap", path=path) or "bwrap"


def bwrap_version() -> str:
    try:
        out = subprocess.run([bwrap_path(), "--version"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return "not found"
    return out.strip() or "unknown"


# --- a real server ----------------------------------------------------------------------------------------------


BenchServer = ServerProcess


@contextmanager
def temp_dir(prefix: str, inside: Path | None = None) -> Iterator[Path]:
    """A scratch directory, removed afterwards (sandbox directories belong to other uids, hence ignore_errors)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=inside))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def running_server(inside: Path | None = None, **extra_env: str) -> Iterator[BenchServer]:
    """Start a server with a temp ``COVE_HOME`` (in ``inside`` if given: another filesystem); on exit kill its
    sandboxes, stop it and remove its home."""
    with temp_dir("cove-bench-", inside) as base:
        server = BenchServer(base / "home", extra_env=dict(extra_env))
        server.start()
        try:
            yield server
        finally:
            with suppress(httpx.HTTPError, OSError, KeyError):
                server.kill_all_sandboxes()
            server.kill(signal.SIGTERM)
