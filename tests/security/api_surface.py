"""The API as ``/openapi.json`` describes it, for the tests that try every route: each operation, its path filled
with the ids a test gives, its required query parameters and a valid body made from its schema — so that what
refuses a request is who sends it, never how it is written. A route added later is tried without a line here;
one whose path names a kind of id not known here fails the tests until it is added to ``IDS``.

WebSocket routes are not in ``/openapi.json``: ``websocket_paths`` lists them from the routes modules.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import APIRouter
from fastapi.routing import APIWebSocketRoute

from cove.api import routes

# Every kind of id a path may name.
IDS = (
    "sandbox_id",
    "session_id",
    "checkpoint_id",
    "process_id",
    "pty_id",
    "turn",
    "request_id",
    "key_id",
    "token_id",
    "port",
)
READS = ("GET", "HEAD")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: Mapping[str, Any]
    components: Mapping[str, Any]

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def reads(self) -> bool:
        return self.method in READS

    @property
    def ids(self) -> list[str]:
        return [p["name"] for p in self.spec.get("parameters", []) if p["in"] == "path"]

    def send(self, client: httpx.Client, ids: Mapping[str, str], **extra: Any) -> httpx.Response:
        """The operation, as ``client``, on the objects ``ids`` names."""
        path = self.path
        for name in self.ids:
            if name not in IDS:
                raise AssertionError(f"{self.name}: a path with {{{name}}}, a kind of id this test does not know")
            path = path.replace(f"{{{name}}}", ids[name])
        params = {
            p["name"]: _example(p.get("schema", {}), self.components, p["name"])
            for p in self.spec.get("parameters", [])
            if p["in"] == "query" and p.get("required")
        }
        options: dict[str, Any] = {"params": params, **extra}
        body = self.spec.get("requestBody")
        if body is not None:
            content = body.get("content", {})
            if "application/json" in content:
                options["json"] = _example(content["application/json"].get("schema", {}), self.components)
            else:
                options["content"] = b"x"
        elif self.method in ("PUT", "POST"):
            options["content"] = b"x"  # a route that reads its body as a stream (an upload)
        return client.request(self.method, path, **options)


def operations(spec: Mapping[str, Any]) -> list[Operation]:
    components = spec.get("components", {}).get("schemas", {})
    return [
        Operation(method.upper(), path, operation, components)
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    ]


def websocket_paths() -> set[str]:
    """The WebSocket routes of every routes module (``cove.api.routes``: where the application's routes are)."""
    found = set()
    for module in pkgutil.iter_modules(routes.__path__):
        for value in vars(importlib.import_module(f"{routes.__name__}.{module.name}")).values():
            if isinstance(value, APIRouter):
                found |= {route.path for route in value.routes if isinstance(route, APIWebSocketRoute)}
    return found


def _example(schema: Mapping[str, Any], components: Mapping[str, Any], name: str = "") -> Any:
    """A small value that fits ``schema``."""
    if "$ref" in schema:
        return _example(components[schema["$ref"].rsplit("/", 1)[-1]], components, name)
    for choice in ("anyOf", "oneOf"):
        if choice in schema:
            options = [option for option in schema[choice] if option.get("type") != "null"]
            return _example(options[0], components, name)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        return {key: _example(properties[key], components, key) for key in schema.get("required", [])}
    if kind == "array":
        return [_example(schema.get("items", {}), components, name)] * schema.get("minItems", 0)
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1)
        return int(low) if kind == "integer" else float(low)
    if kind == "boolean":
        return False
    if kind == "string":
        return "/workspace/example" if name == "path" else "x" * max(1, schema.get("minLength", 1))
    return None
