"""The ``cove`` command line: a thin layer over the SDK and the server's own entry points."""

from __future__ import annotations

from importlib.metadata import version as package_version
from typing import Annotated

import typer

from cove.cli import agent, audit, checkpoint, files, keys, sandbox
from cove.cli._output import command

app = typer.Typer(
    help="Cove: coding agents in isolated Linux sandboxes. Start a server with `cove serve`; the other commands "
    "talk to the server at $COVE_URL (default http://127.0.0.1:7420).",
    no_args_is_help=True,
)
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(files.app, name="files")
app.add_typer(agent.app, name="agent")
app.add_typer(checkpoint.app, name="checkpoint")
app.add_typer(keys.app, name="keys")
app.add_typer(keys.tokens_app, name="tokens")
command(app, "usage")(keys.usage)
command(app, "audit")(audit.audit)


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
    default_memory_mb: Annotated[
        int | None, typer.Option(min=0, help="Memory limit of a sandbox that sets none, MiB; 0: none (default 2048)")
    ] = None,
    default_cpus: Annotated[
        float | None, typer.Option(min=0, help="CPU limit of a sandbox that sets none, cores; 0: none (the default)")
    ] = None,
    default_pids: Annotated[
        int | None, typer.Option(min=0, help="Process limit of a sandbox that sets none; 0: none (default 1024)")
    ] = None,
    default_disk_mb: Annotated[
        int | None, typer.Option(min=0, help="Disk quota of a sandbox that sets none, MiB; 0: none (default 10240)")
    ] = None,
    default_shm_mb: Annotated[
        int | None, typer.Option(min=1, help="/dev/shm size of a sandbox that sets none, MiB (default 256)")
    ] = None,
    default_network: Annotated[
        str | None,
        typer.Option(help="Network of a sandbox that names none: none, egress or host (COVE_DEFAULT_NETWORK; egress)"),
    ] = None,
    allow_host_network: Annotated[
        bool,
        typer.Option(help="Let sandboxes ask for network 'host': the host's own network (COVE_ALLOW_HOST_NETWORK=1)"),
    ] = False,
    preview_domain: Annotated[
        str | None,
        typer.Option(
            help="Serve previews at http://PORT-ID.DOMAIN/ too: a domain whose names all lead here "
            "(COVE_PREVIEW_DOMAIN)"
        ),
    ] = None,
    access_log: Annotated[
        bool,
        typer.Option(
            help="Log a line for every HTTP request (COVE_ACCESS_LOG=1); calls that change something are "
            "in the audit trail either way"
        ),
    ] = False,
    quota_running_sandboxes: Annotated[
        int | None, typer.Option(min=0, help="A new key's quota: sandboxes running at once; 0: none (default 10)")
    ] = None,
    quota_running_memory_mb: Annotated[
        int | None,
        typer.Option(min=0, help="A new key's quota: memory of its running sandboxes, MiB; 0: none (default 20480)"),
    ] = None,
    quota_agent_sessions: Annotated[
        int | None, typer.Option(min=0, help="A new key's quota: agent sessions not ended; 0: none (default 10)")
    ] = None,
    quota_checkpoint_mb: Annotated[
        int | None, typer.Option(min=0, help="A new key's quota: its checkpoints' disk, MiB; 0: none (default 10240)")
    ] = None,
    quota_max_memory_mb: Annotated[
        int | None, typer.Option(min=0, help="A new key's largest memory limit per sandbox; 0: none (default 8192)")
    ] = None,
    quota_max_cpus: Annotated[
        float | None, typer.Option(min=0, help="A new key's largest CPU limit per sandbox; 0: none (the default)")
    ] = None,
    quota_max_pids: Annotated[
        int | None, typer.Option(min=0, help="A new key's largest process limit per sandbox; 0: none (default 4096)")
    ] = None,
    quota_max_disk_mb: Annotated[
        int | None, typer.Option(min=0, help="A new key's largest disk quota per sandbox, MiB; 0: none (default 51200)")
    ] = None,
    quota_max_shm_mb: Annotated[
        int | None, typer.Option(min=0, help="A new key's largest /dev/shm per sandbox, MiB; 0: none (default 1024)")
    ] = None,
) -> None:
    """Run the Cove server (state under $COVE_HOME, default ~/.cove); the API's own docs are at /docs.

    Every sandbox gets a memory, process, disk and /dev/shm limit even when it asks for none: the --default-*
    options set them, as do COVE_DEFAULT_MEMORY_MB, COVE_DEFAULT_CPUS, COVE_DEFAULT_PIDS, COVE_DEFAULT_DISK_MB and
    COVE_DEFAULT_SHM_MB (an option wins over its variable). Keys made without quotas of their own get the
    --quota-* options' (or COVE_QUOTA_*'s) as theirs (docs/teams.md). Preview URLs of published ports start with
    $COVE_URL when it is set (the address clients reach this server at), else with the address each request
    came to."""
    from cove.api.server import serve as run_server
    from cove.config import ServerSettings

    limits: dict[str, float | None] = {
        "memory_mb": default_memory_mb,
        "cpus": default_cpus,
        "pids": default_pids,
        "disk_mb": default_disk_mb,
        "shm_mb": default_shm_mb,
    }
    quotas: dict[str, float | None] = {
        "running_sandboxes": quota_running_sandboxes,
        "running_memory_mb": quota_running_memory_mb,
        "agent_sessions": quota_agent_sessions,
        "checkpoint_mb": quota_checkpoint_mb,
        "max_memory_mb": quota_max_memory_mb,
        "max_cpus": quota_max_cpus,
        "max_pids": quota_max_pids,
        "max_disk_mb": quota_max_disk_mb,
        "max_shm_mb": quota_max_shm_mb,
    }
    settings = ServerSettings.from_env(
        host=host,
        port=port,
        limits=limits,
        quotas=quotas,
        default_network=default_network,
        allow_host_network=allow_host_network,
        preview_domain=preview_domain,
        access_log=access_log,
    )
    run_server(settings)


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
