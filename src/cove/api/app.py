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
from cove.api import auth, errors
from cove.api.deps import Services
from cove.api.request_limits import BodyLimit
from cove.api.routes import agents, checkpoints, execs, files, model, pool, ptys, sandboxes, turns
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
from cove.services.checkpoints import CheckpointService
from cove.services.execs import ExecService
from cove.services.files import FileService
from cove.services.ptys import PtyService
from cove.services.sandboxes import SandboxService
from cove.services.sessions import SessionService
from cove.services.turns import TurnService
from cove.store.checkpoints import CheckpointStore
from cove.store.db import open_engine
from cove.store.events import EventStore
from cove.store.keys import KeyStore, new_key
from cove.store.sandboxes import SandboxStore, first_uid
from cove.store.sessions import SessionStore
from cove.store.writer import SqliteWriter

log = logging.getLogger("cove.server")


async def ensure_admin_key(settings: ServerSettings, keys: KeyStore) -> str | None:
    """On first start, create the admin key and store it where only this user can read it."""
    path = settings.admin_key_path
    if path.exists():
        key = path.read_text().strip()
        if not await keys.is_valid(key):
            await keys.add(key, "admin")
        return None
    key = new_key()
    await keys.add(key, "admin")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


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
        keys = KeyStore(engine)
        if await ensure_admin_key(settings, keys):
            log.warning(
                "created the admin API key in %s (mode 0600); clients on this machine read it from there, "
                "others use: export COVE_API_KEY=$(cat %s)",
                settings.admin_key_path,
                settings.admin_key_path,
            )
        cgroups = detect()
        egress = open_egress(settings.home, settings.network_subnet)
        resolv = egress.resolv_conf if egress is not None else None
        driver = BwrapDriver(cgroups, model_dir=settings.model_dir, resolv_conf=resolv)
        layers = LayerStore(settings.layers_dir)
        await asyncio.to_thread(layers.ensure)
        storage = open_storage(layers, settings.views_dir, settings.scratch_dir, settings.sandboxes_dir)
        sandbox_store = SandboxStore(engine, first_uid(settings.home))
        sandbox_service = SandboxService(settings, sandbox_store, driver, storage, egress)
        await sandbox_service.recover()
        checkpoint_service = CheckpointService(CheckpointStore(engine), sandbox_service, cgroups)
        await checkpoint_service.collect()
        exec_service = ExecService(sandbox_service)
        watcher = DirectoryWatcher()
        writer = SqliteWriter(engine)
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
        app.state.services = Services(
            keys=keys,
            sandboxes=sandbox_service,
            execs=exec_service,
            files=FileService(sandbox_service),
            sessions=session_service,
            model=gateway,
            checkpoints=checkpoint_service,
            ptys=PtyService(sandbox_service),
            turns=turn_service,
        )
        reaper = asyncio.create_task(sandbox_service.run_reaper())
        sandbox_service.start_pool()
        try:
            yield
        finally:
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper
            # Pooled sandboxes belong to this server's life (a SIGKILLed server's are killed at the next start).
            await sandbox_service.pool.drain()
            await session_service.shutdown()
            await turn_service.close()
            await gateway.stop()
            await sandbox_service.close()
            watcher.close()
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
    app.add_middleware(BodyLimit)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": package_name}

    protected = [Depends(auth.require_key)]
    app.include_router(sandboxes.router, dependencies=protected)
    app.include_router(execs.router, dependencies=protected)
    app.include_router(files.router, dependencies=protected)
    app.include_router(checkpoints.router, dependencies=protected)
    app.include_router(agents.router, dependencies=protected)
    app.include_router(model.router, dependencies=protected)
    app.include_router(pool.router, dependencies=protected)
    app.include_router(ptys.router, dependencies=protected)
    app.include_router(turns.router, dependencies=protected)
    app.include_router(execs.ws_router)
    app.include_router(agents.ws_router)
    app.include_router(ptys.ws_router)
    return app
