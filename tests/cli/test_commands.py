"""The CLI's shape, without a server: every command speaks JSON, `agent start` takes every setting `configure`
does, and `--version` answers."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

from typer.main import get_command

from cove.cli import app

SERVERS = {"serve", "simulator"}  # they run a server; there is nothing to print as JSON


def commands() -> dict[str, list[str]]:
    """Each command's full name → its option names."""
    found: dict[str, list[str]] = {}

    def walk(group: object, prefix: str) -> None:
        for name, command in getattr(group, "commands", {}).items():
            if hasattr(command, "commands"):
                walk(command, f"{prefix}{name} ")
            else:
                found[prefix + name] = [opt for param in command.params for opt in getattr(param, "opts", [])]

    walk(get_command(app), "")
    return found


def test_every_command_but_the_servers_has_json() -> None:
    found = commands()
    assert {"sandbox ps", "sandbox info", "sandbox attach", "sandbox kill-process", "agent info"} <= set(found)
    assert [name for name, options in found.items() if "--json" not in options and name not in SERVERS] == []


def test_agent_start_takes_every_setting_of_configure() -> None:
    found = commands()
    settings = {option for option in found["agent configure"] if option.startswith("--")} - {"--json"}
    assert "--mcp-servers" in settings and settings <= set(found["agent start"])


def test_version() -> None:
    shown = subprocess.run([sys.executable, "-m", "cove", "--version"], capture_output=True, text=True, check=True)
    assert shown.stdout == f"cove {version('cove')}\n"


def test_help_explains_dash_dash_for_commands_with_options() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "cove", "sandbox", "exec", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert "cove sandbox exec SANDBOX -- ls -la /workspace" in shown.stdout
