"""``cove keys create|ls|quotas|rm`` (the admin's), ``cove tokens ls|rm`` and ``cove usage``: tenants, their
quotas and what they use (docs/teams.md)."""

from __future__ import annotations

import time
from typing import Annotated, Any, cast

import typer

from cove.cli._output import Column, JsonOpt, command, details, emit, emit_json, table
from cove.cli.sandbox import SandboxArg, ago, limits_text
from cove.sdk import (
    KeyInfo,
    Limits,
    Quotas,
    Sandbox,
    Scope,
    create_key,
    list_keys,
    list_tokens,
    revoke_key,
    revoke_token,
    update_key,
)
from cove.sdk import usage as read_usage

app = typer.Typer(help="Tenants' API keys and their quotas (the admin key's).", no_args_is_help=True)
tokens_app = typer.Typer(help="Scoped tokens for one sandbox or session: mint, list, revoke.", no_args_is_help=True)
KeyArg = Annotated[str, typer.Argument(metavar="KEY", help="A key's id (key_…), not its secret")]
QUOTAS = "running_sandboxes, running_memory_mb, agent_sessions, checkpoint_mb, max_memory_mb, max_cpus, max_pids, "
QUOTAS += "max_disk_mb, max_shm_mb"
QuotaOpt = Annotated[
    list[str],
    typer.Option("--quota", "-q", help=f"NAME=VALUE, repeatable; 0 or none: no bound. Names: {QUOTAS}"),
]


def quota_changes(items: list[str]) -> dict[str, Any]:
    """``--quota`` options as the wire's partial quotas: ``max_<limit>`` goes into ``max_limits``."""
    changes: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        known = name in Quotas.model_fields or name.removeprefix("max_") in Limits.model_fields
        if not sep or name == "max_limits" or not known:
            raise typer.BadParameter(f"{item!r}: expected NAME=VALUE with NAME among {QUOTAS}", param_hint="--quota")
        try:
            value = None if text.strip().lower() in ("0", "none", "") else float(text)
        except ValueError:
            raise typer.BadParameter(f"{item!r}: {text!r} is not a number", param_hint="--quota") from None
        if value is not None and name != "max_cpus":
            value = int(value)
        if name in Quotas.model_fields:
            changes[name] = value
        else:
            limits[name.removeprefix("max_")] = value
    if limits:
        changes["max_limits"] = limits
    return changes


def quotas_text(quotas: Quotas | None) -> str:
    if quotas is None:
        return "none"
    counted = [
        f"{quotas.running_sandboxes} sandboxes" if quotas.running_sandboxes is not None else "",
        f"{quotas.running_memory_mb}M running" if quotas.running_memory_mb is not None else "",
        f"{quotas.agent_sessions} sessions" if quotas.agent_sessions is not None else "",
        f"{quotas.checkpoint_mb}M checkpoints" if quotas.checkpoint_mb is not None else "",
    ]
    largest = limits_text(quotas.max_limits)
    return ", ".join(part for part in counted if part) + (f"; each at most {largest}" if largest != "none" else "")


def _key_row(key: KeyInfo) -> list[object]:
    state = f"revoked {ago(key.revoked_at)}" if key.revoked_at else ("admin" if key.admin else "active")
    return [key.id, key.name, state, ago(key.created_at), quotas_text(key.quotas)]


@command(app)
def create(
    name: Annotated[str, typer.Argument(help="Who or what the key is for")],
    quota: QuotaOpt = [],  # noqa: B006
    as_json: JsonOpt = False,
) -> None:
    """Make a tenant's key and print its secret — shown this once. Quotas not given are the server's defaults."""
    created = create_key(name, quotas=quota_changes(quota))
    emit(created, as_json, created.key)
    if not as_json:
        typer.echo(f"{created.id} ({created.name}): {quotas_text(created.quotas)}", err=True)


@command(app, "ls")
def list_all(
    show_all: Annotated[bool, typer.Option("--all", "-a", help="Revoked keys too")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List the keys (never their secrets)."""
    keys = list_keys(include_revoked=show_all)
    if as_json:
        emit_json(keys)
        return
    table(
        [Column("KEY", id=True), Column("NAME"), Column("STATE"), Column("CREATED"), Column("QUOTAS")],
        [_key_row(key) for key in keys],
    )


@command(app)
def quotas(key_id: KeyArg, quota: QuotaOpt = [], as_json: JsonOpt = False) -> None:  # noqa: B006
    """Change KEY's quotas: those given, the others kept."""
    key = update_key(key_id, quotas=quota_changes(quota))
    emit(key, as_json, quotas_text(key.quotas))


@command(app, "rm")
def remove(key_id: KeyArg, as_json: JsonOpt = False) -> None:
    """Revoke KEY now: it and its tokens stop working, its open streams close; its sandboxes keep running."""
    key = revoke_key(key_id)
    emit(key, as_json, f"{key.id} revoked")


@command(tokens_app, "create")
def create_token(
    sandbox_id: SandboxArg,
    scope: Annotated[
        list[str], typer.Option("--scope", "-s", help="read, prompt, approve, exec, files or preview; repeatable")
    ],
    session: Annotated[str | None, typer.Option(help="Only this agent session of SANDBOX")] = None,
    ttl: Annotated[int, typer.Option(min=1, help="Seconds until it expires")] = 3600,
    as_json: JsonOpt = False,
) -> None:
    """Mint a token for SANDBOX (or one session of it) and print it — shown this once."""
    scopes = cast(list[Scope], scope)  # the server refuses an unknown one, naming it
    created = Sandbox.connect(sandbox_id).create_token(scopes, ttl_s=ttl, session_id=session)
    emit(created, as_json, created.token)


@command(tokens_app, "ls")
def list_live_tokens(as_json: JsonOpt = False) -> None:
    """The tokens of this key's tenant that are neither expired nor revoked."""
    tokens = list_tokens()
    if as_json:
        emit_json(tokens)
        return
    now = time.time()
    table(
        [Column("TOKEN", id=True), Column("SANDBOX", id=True), Column("SESSION"), Column("SCOPES"), Column("EXPIRES")],
        [
            [t.id, t.sandbox_id, t.session_id or "", ",".join(t.scopes), f"in {int(t.expires_at - now)}s"]
            for t in tokens
        ],
    )


@command(tokens_app, "rm")
def remove_token(
    token_id: Annotated[str, typer.Argument(metavar="TOKEN", help="A token's id (tok_…)")], as_json: JsonOpt = False
) -> None:
    """Revoke a token now; the streams it holds open close."""
    token = revoke_token(token_id)
    emit(token, as_json, f"{token.id} revoked")


def usage(
    tenant: Annotated[str | None, typer.Option(help="The admin's: this tenant's (a key's id)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """What this key's tenant uses against its quotas, and what its agents have spent."""
    report = read_usage(tenant_id=tenant)
    if as_json:
        emit_json(report)
        return
    quotas, used = report.quotas, report.used

    def against(value: float, bound: float | None, unit: str = "") -> str:
        return f"{value:g}{unit}" + (f" of {bound:g}{unit}" if bound is not None else "")

    metered = report.metered_usage
    details(
        [
            ("tenant", report.tenant_id),
            ("sandboxes", against(used.running_sandboxes, quotas.running_sandboxes if quotas else None)),
            ("memory", against(used.running_memory_mb, quotas.running_memory_mb if quotas else None, "M")),
            ("sessions", against(used.agent_sessions, quotas.agent_sessions if quotas else None)),
            ("checkpoints", against(round(used.checkpoint_mb, 1), quotas.checkpoint_mb if quotas else None, "M")),
            ("largest", limits_text(quotas.max_limits) if quotas else "none"),
            ("tokens", f"{metered.input_tokens:,} in, {metered.output_tokens:,} out (metered)"),
            ("cost", f"${report.total_cost_usd:.4f}"),
        ]
    )
