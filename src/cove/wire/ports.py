"""Wire models for published ports: a port of a sandbox reachable through Cove at a preview URL."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from cove.wire.bounds import Port


class PortExpose(BaseModel):
    model_config = ConfigDict(extra="forbid")

    port: Port
    public: bool = Field(False, description="Whether anyone with the URL may open it; else its token is needed")


class PortInfo(BaseModel):
    port: int = Field(description="The port inside the sandbox")
    url: str = Field(description="Where the app answers through Cove (its preview URL)")
    token: str = Field(
        description="Opens a private preview: header X-Cove-Preview-Token, or ?token= once (then a cookie); "
        "nothing else of the API"
    )
    public: bool


class PortList(BaseModel):
    ports: list[PortInfo]
