"""How routes reach the services: one container on the app's state, built at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from cove.modelproxy.gateway import ModelGateway
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
from cove.services.usage import UsageService


@dataclass
class Services:
    keys: KeyService
    tokens: TokenService
    streams: OpenStreams
    audit: AuditService
    usage: UsageService
    sandboxes: SandboxService
    execs: ExecService
    files: FileService
    sessions: SessionService
    model: ModelGateway
    checkpoints: CheckpointService
    ptys: PtyService
    ports: PortService


def services_of(app: FastAPI) -> Services:
    services: Services = app.state.services
    return services


def services(request: Request) -> Services:
    return services_of(request.app)


ServicesDep = Annotated[Services, Depends(services)]
