"""Every Python and shell example of README.md and docs/*.md, run as written against a real server.

Each ``python`` block runs as a script and each ``bash`` block as ``bash -euo pipefail``, in a fresh process
and an empty directory, with ``COVE_URL`` and ``COVE_HOME`` pointing at a real ``cove serve`` and ``.venv/bin``
first on ``PATH`` — as a reader who started a server and activated the venv would run them. An example passes
when it exits 0. A block that cannot run as a test carries ``<!-- docs-test: skip — why -->`` on the line just
before its fence; every fence names its language, so a shell example cannot hide from this test untagged.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, CoveServer, serving

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNERS = {"python": [sys.executable, "-"], "bash": ["bash", "-euo", "pipefail", "-s"]}
FENCE = re.compile(r"^```(\S*)\s*$")
SKIP = re.compile(r"^<!-- docs-test: skip — (.+) -->$")


@dataclass(frozen=True)
class Example:
    document: Path
    line: int
    language: str
    code: str
    skip: str | None

    @property
    def name(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def examples() -> Iterator[Example]:
    for document in DOCUMENTS:
        lines = document.read_text().splitlines()
        number = 0
        while number < len(lines):
            opening = FENCE.match(lines[number])
            if opening is None:
                number += 1
                continue
            end = next(i for i in range(number + 1, len(lines)) if lines[i] == "```")
            marker = SKIP.match(lines[number - 1]) if number else None
            code = "\n".join(lines[number + 1 : end]) + "\n"
            yield Example(document, number + 1, opening.group(1), code, marker.group(1) if marker else None)
            number = end + 1


EXAMPLES = list(examples())
RUNNABLE = [e for e in EXAMPLES if e.language in RUNNERS]


def test_every_fence_names_its_language_and_every_skip_says_why() -> None:
    assert [e.name for e in EXAMPLES if not e.language] == []
    assert [e.name for e in EXAMPLES if e.language in ("sh", "shell", "console", "py")] == [], "python or bash"
    assert all(e.skip for e in EXAMPLES if e.skip is not None)
    # Skips are few, and only on blocks that would run: a marker on a json block means nothing.
    assert [e.name for e in EXAMPLES if e.skip and e.language not in RUNNERS] == []
    assert len([e for e in RUNNABLE if e.skip]) <= len(RUNNABLE) // 3


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CoveServer]:
    """A server of the examples' own: between two of them all its sandboxes are killed, and its warm pool with
    them, which the suite's shared server must keep."""
    with serving(tmp_path_factory.mktemp("docs") / "home") as server:
        yield server


@pytest.mark.parametrize("example", [e for e in RUNNABLE if not e.skip], ids=lambda e: e.name)
def test_example_runs(example: Example, docs_server: CoveServer, tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in docs_server.env.items() if k != "COVE_API_KEY"},
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    try:
        ran = subprocess.run(
            RUNNERS[example.language],
            input=example.code,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
    finally:
        docs_server.kill_all_sandboxes()  # what an example left running must not reach the next
    assert ran.returncode == 0, (
        f"{example.name} ({example.language}) exited {ran.returncode}\n"
        f"--- stdout\n{ran.stdout[-4000:]}\n--- stderr\n{ran.stderr[-4000:]}"
    )


def test_the_api_page_the_readme_points_to_is_served(docs_server: CoveServer) -> None:
    page = httpx.get(f"{docs_server.url}/docs", timeout=10)
    assert page.status_code == 200 and "swagger-ui" in page.text and "/openapi.json" in page.text
