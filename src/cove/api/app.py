"""The Cove server application: wiring of store, runtime and services at start-up, routes on top."""

from __future__ import annotations

import asyncio
import compileall
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import Depends, FastAPI

import cove
from cove import __name__ as package_name
from cove.api import auth, errors, inspector
from cove.api.audit import AuditTrail
from cove.api.deps import Services
from cove.api.failed_auth import FailedAuth
from cove.api.previews import PreviewRouter
from cove.api.request_limits import BodyLimit
from cove.api.routes import (
    agents,
    audit,
    checkpoints,
    execs,
    files,
    keys,
    model,
    pool,
    ports,
    ptys,
    sandboxes,
    tokens,
    turns,
)
from cove.config import ServerSettings
from cove.events.log import EventLog
from cove.modelproxy.gateway import ModelGateway
from cove.runtime import safe_open
from cove.runtime.bwrap import BwrapDriver
from cove.runtime.cgroups import detect
from cove.runtime.egress import open_egress
from cove.runtime.inotify import DirectoryWatcher
from cove.runtime.layers import LayerStore
from cove.runtime.storage import open_storage
from cove.services.audit import AuditService
from cove.services.checkpoints import CheckpointService
from cove.services.execs import ExecService
from cove.services.files import FileService
from cove.services.keys import KeyService
from cove.services.ports import PortService
from cove.services.ptys import PtyService
from cove.services.sandboxes import SandboxService
from cove.services.sessions import SessionService
from cove.services.streams import OpenStreams
from cove.services.tokens import TokenService
from cove.services.turns import TurnService
from cove.services.usage import UsageService
from cove.store.audit import AuditStore
from cove.store.checkpoints import CheckpointStore
from cove.store.db import open_engine
from cove.store.events import EventStore
from cove.store.keys import KeyStore
from cove.store.migrate import give_orphans_to
from cove.store.ports import PortStore
from cove.store.sandboxes import SandboxStore, first_uid
from cove.store.secrets import load_secret
from cove.store.sessions import SessionStore
from cove.store.tokens import TokenStore
from cove.store.writer import SqliteWriter

log = logging.getLogger("cove.server")


def make_private(settings: ServerSettings) -> None:
    """``$COVE_HOME`` and the database in it for this user alone: the admin key, every sandbox's files and the
    checkpoint layers live there (a host user reaching a layer could run what a sandbox left in it)."""
    settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.home.chmod(0o700)
    database = settings.database_path
    # SQLite gives its -wal and -shm files the database's mode: the database is made 0600 before SQLite opens it.
    os.close(os.open(database, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
    for path in (database, database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            path.chmod(0o600)


def precompile_guest() -> None:
    """Compile the supervisor's modules once, here: inside a sandbox the code is read-only and the supervisor
    runs with -B, so without this every sandbox start compiled them again (about 6 ms, benchmarks/RESULTS.md)."""
    package = Path(cove.__file__).parent
    compileall.compile_file(package / "__init__.py", quiet=1)
    compileall.compile_dir(package / "guest", quiet=1)


def create_app(settings: ServerSettings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not safe_open.available():
            raise RuntimeError("Cove needs Linux 5.6 or later (openat2) to read what sandboxes write safely")
        make_private(settings)
        settings.sandboxes_dir.mkdir(exist_ok=True)
        await asyncio.to_thread(precompile_guest)
        engine = await open_engine(settings.database_path)
        writer = SqliteWriter(engine)
        streams = OpenStreams()
        key_service = KeyService(KeyStore(engine), streams, settings.default_quotas)
        await key_service.load()
        admin_id, created = await key_service.ensure_admin(settings.admin_key_path)
        if created:
            log.warning(
                "created the admin API key in %s (mode 0600); clients on this machine read it from there, "
                "others use: export COVE_API_KEY=$(cat %s)",
                settings.admin_key_path,
                settings.admin_key_path,
            )
        if adopted := await give_orphans_to(engine, admin_id):
            log.info(
                "%d sandboxes, sessions, checkpoints and conversations from before tenants are the admin's", adopted
            )
        cgroups = detect()
        egress = open_egress(settings.home, settings.network_subnet)
        resolv = egress.resolv_conf if egress is not None else None
        driver = BwrapDriver(cgroups, model_dir=settings.model_dir, resolv_conf=resolv)
        layers = LayerStore(settings.layers_dir)
        await asyncio.to_thread(layers.ensure)
        storage = open_storage(layers, settings.views_dir, settings.scratch_dir, settings.sandboxes_dir)
        sandbox_store = SandboxStore(engine, writer, first_uid(settings.home))
        sandbox_service = SandboxService(settings, sandbox_store, driver, storage, egress)
        await sandbox_service.recover()
        checkpoint_service = CheckpointService(CheckpointStore(engine), sandbox_service, cgroups)
        await checkpoint_service.collect()
        exec_service = ExecService(sandbox_service)
        watcher = DirectoryWatcher()
        turn_service = TurnService(sandbox_service, settings.turns_dir)
        await turn_service.recover()
        session_service = SessionService(
            SessionStore(engine, writer),
            EventLog(EventStore(engine, writer)),
            sandbox_service,
            exec_service,
            watcher,
            turn_service,
        )
        gateway = ModelGateway(settings.model_dir, session_service.resolve_token, session_service.record_usage)
        await gateway.start()
        sandbox_service.on_stopped.append(session_service.sandbox_going)
        sandbox_service.on_restarting.append(session_service.sandbox_going)
        await session_service.recover()
        secret = await asyncio.to_thread(load_secret, settings.token_secret_path)
        audit_service = AuditService(AuditStore(engine, writer), settings.audit_days)
        token_service = TokenService(TokenStore(engine), secret, key_service, sandbox_service, session_service, streams)
        port_service = PortService(
            PortStore(engine),
            sandbox_service,
            token_service,
            streams,
            base_url=settings.url,
            domain=settings.preview_domain,
        )
        await port_service.recover()
        sandbox_service.on_stopped.append(port_service.sandbox_stopped)
        app.state.services = Services(
            keys=key_service,
            tokens=token_service,
            streams=streams,
            audit=audit_service,
            usage=UsageService(key_service, sandbox_service, session_service, checkpoint_service),
            sandboxes=sandbox_service,
            execs=exec_service,
            files=FileService(sandbox_service),
            sessions=session_service,
            model=gateway,
            checkpoints=checkpoint_service,
            ptys=PtyService(sandbox_service),
            ports=port_service,
        )
        background = [
            asyncio.create_task(sandbox_service.run_reaper()),
            asyncio.create_task(audit_service.run_pruner()),
        ]
        sandbox_service.start_pool()
        try:
            yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            # Pooled sandboxes belong to this server's life (a SIGKILLed server's are killed at the next start).
            await sandbox_service.drain_pools()
            await session_service.shutdown()
            await turn_service.close()
            await gateway.stop()
            await sandbox_service.close()
            watcher.close()
            await audit_service.flush()
            await asyncio.to_thread(writer.close)
            await engine.dispose()

    app = FastAPI(
        title="Cove",
        version="0.1.0",
        summary="Coding agents in isolated Linux sandboxes, as durable, steerable sessions",
        lifespan=lifespan,
    )
    errors.install(app)
    errors.document(app)
    app.state.failed_auth = FailedAuth(settings.auth_failures_per_minute)
    app.add_middleware(BodyLimit)
    app.add_middleware(AuditTrail)  # it sees every answer of the API, a refused body's too
    # Outermost: a preview's request body streams to its app, whatever its size, and an app's traffic is not the
    # API's (the audit trail records what is done to Cove, never a preview's requests).
    app.add_middleware(PreviewRouter, domain=settings.preview_domain)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": package_name}

    # Every route but /healthz and the Inspector's page: authenticated before anything else runs (the routes take
    # the principal too).
    protected = [Depends(auth.require_principal)]
    for routes in (sandboxes, execs, files, checkpoints, agents, turns, ptys, ports, model, pool, keys, tokens, audit):
        app.include_router(routes.router, dependencies=protected)
    app.include_router(tokens.whoami_router, dependencies=protected)
    app.include_router(execs.ws_router)
    app.include_router(agents.ws_router)
    app.include_router(ptys.ws_router)
    inspector.install(app)
    return app
