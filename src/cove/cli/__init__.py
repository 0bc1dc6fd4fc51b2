"""The ``cove`` command line: a thin layer over the SDK and the server's own entry points."""

from __future__ import annotations

from typing import Annotated

import typer

from cove.cli import agent, checkpoint, files, sandbox

app = typer.Typer(help="Cove: coding agents in isolated Linux sandboxes.", no_args_is_help=True)
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(files.app, name="files")
app.add_typer(agent.app, name="agent")
app.add_typer(checkpoint.app, name="checkpoint")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (COVE_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (COVE_PORT)")] = None,
) -> None:
    """Run the Cove server (state under $COVE_HOME, default ~/.cove)."""
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
