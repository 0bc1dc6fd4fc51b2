"""The ``cove`` command line: a thin layer over the SDK and the server's own entry points."""

from __future__ import annotations

from importlib.metadata import version as package_version
from typing import Annotated

import typer

from cove.cli import agent, checkpoint, files, sandbox

app = typer.Typer(
    help="Cove: coding agents in isolated Linux sandboxes. Start a server with `cove serve`; the other commands "
    "talk to the server at $COVE_URL (default http://127.0.0.1:7420).",
    no_args_is_help=True,
)
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(files.app, name="files")
app.add_typer(agent.app, name="agent")
app.add_typer(checkpoint.app, name="checkpoint")


def _print_version(wanted: bool) -> None:
    if wanted:
        print(f"cove {package_version('cove')}")
        raise typer.Exit()


@app.callback()
def options(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print Cove's version and exit")
    ] = False,
) -> None:
    """Cove: coding agents in isolated Linux sandboxes."""


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (COVE_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (COVE_PORT)")] = None,
) -> None:
    """Run the Cove server (state under $COVE_HOME, default ~/.cove); the API's own docs are at /docs."""
    from cove.api.server import serve as run_server
    from cove.config import ServerSettings

    run_server(ServerSettings.from_env(host=host, port=port))


@app.command()
def simulator(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 7431,
) -> None:
    """Run the model simulator alone (a local Anthropic Messages API; see docs/simulator.md)."""
    from cove.simulator import serve as run_simulator

    run_simulator(host, port)


def main() -> None:
    app()
