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
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class BenchServer:
    """A ``cove serve`` process on a free port with its own home."""

    home: Path
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_key(self) -> str:
        return (self.home / "admin_key").read_text().strip()

    @property
    def log_path(self) -> Path:
        return self.home.parent / f"server-{self.port}.log"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
        env.update(COVE_HOME=str(self.home), COVE_URL=self.url, **self.extra_env)
        return env

    def start(self, timeout: float = 30.0) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cove", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"cove serve exited with {self.process.returncode}; see {self.log_path}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f"cove serve did not become healthy in {timeout:.0f} s; see {self.log_path}")

    def kill_all_sandboxes(self) -> None:
        headers = {"authorization": f"Bearer {self.api_key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=60) as client:
            for sandbox in client.get("/v1/sandboxes", params={"state": "running"}).json()["sandboxes"]:
                client.delete(f"/v1/sandboxes/{sandbox['id']}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)


@contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    """A scratch directory, removed afterwards (sandbox directories belong to other uids, hence ignore_errors)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def running_server(**extra_env: str) -> Iterator[BenchServer]:
    """Start a server with a temp ``COVE_HOME``; on exit kill its sandboxes, stop it and remove its home."""
    with temp_dir("cove-bench-") as base:
        server = BenchServer(base / "home", extra_env=dict(extra_env))
        server.start()
        try:
            yield server
        finally:
            with suppress(httpx.HTTPError, OSError, KeyError):
                server.kill_all_sandboxes()
            server.stop()
