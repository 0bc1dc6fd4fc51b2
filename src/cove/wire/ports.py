"""Wire models for published ports: a port of a sandbox reachable through Cove at a preview URL."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from cove.wire.bounds import Port
from cove.wire.tokens import MAX_TTL_S

DEFAULT_PREVIEW_TTL_S = 24 * 3600


class PortExpose(BaseModel):
    model_config = ConfigDict(extra="forbid")

    port: Port
    public: bool = Field(False, description="Whether anyone with the URL may open it; else a token is needed")
    ttl_s: int = Field(
        DEFAULT_PREVIEW_TTL_S,
        ge=1,
        le=MAX_TTL_S,
        description="Seconds until the token this gives expires (a port exposed again keeps its live token)",
    )


class PortInfo(BaseModel):
    port: int = Field(description="The port inside the sandbox")
    url: str = Field(description="Where the app answers through Cove (its preview URL)")
    token: str = Field(
        description="A scoped token (scope 'preview', this sandbox) that opens the sandbox's private previews: "
        "header X-Cove-Preview-Token, or ?token= once (then a cookie); nothing else of the API. Closing the port "
        "revokes it"
    )
    expires_at: float = Field(description="When the token expires")
    public: bool


class PortList(BaseModel):
    ports: list[PortInfo]
