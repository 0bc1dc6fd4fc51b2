"""``make demo`` (``python -m cove.demo``) against a running server: the agent's transcript and nothing else."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import CoveServer


def test_the_demo_prints_the_transcript_with_simulated_costs(server: CoveServer) -> None:
    demo = subprocess.run(
        [sys.executable, "-m", "cove.demo"],
        env=server.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert demo.returncode == 0, demo.stderr
    transcript = demo.stdout
    for step in ("1. the agent writes and runs a program", "3. interrupting", "4. resuming the conversation"):
        assert step in transcript
    assert "↳ 0 1 1 2 3 5 8 13 21 34" in transcript  # the program the agent wrote, run in the sandbox
    assert "■ turn 3 interrupted" in transcript and "Earlier prompts:" in transcript
    assert "tokens and costs are simulated" in transcript
    costs = [line for line in transcript.splitlines() if "$" in line]
    assert costs and all("(simulated)" in line for line in costs)
    assert "INFO" not in transcript + demo.stderr and "HTTP/1.1" not in transcript  # no server log lines
