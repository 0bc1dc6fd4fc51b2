"""A deterministic stand-in for the Anthropic Messages API, scripted by ``@`` directives in user prompts.

Tests and ``make demo`` point the Claude Code CLI at it with ``ANTHROPIC_BASE_URL``; see docs/simulator.md.
"""

from __future__ import annotations

from cove.simulator.app import create_app
from cove.simulator.runner import BackgroundSimulator, bound_port, run_in_background, serve

__all__ = ["BackgroundSimulator", "bound_port", "create_app", "run_in_background", "serve"]
