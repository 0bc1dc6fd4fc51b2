"""The bounds every request field is held to: sizes, counts and shapes, each refused with a message naming it.

Nothing a client sends is stored, passed to a sandbox or handed to the kernel before it fits these: a label of
300 MB, an environment name with ``=`` in it, a NUL in an argument, a path of 5,000 characters or a signal number
the kernel does not have would otherwise surface as a 500 (or a 3.6 GB database) far from the request that
caused it. The same types serve the server's validation and the SDK's parsing.
"""

from __future__ import annotations

import posixpath
import re
import signal
from typing import Annotated

from pydantic import AfterValidator, Field

MAX_PATH = 4096
MAX_LIST = 10_000  # directory entries in one reply
MAX_ENV_VARS = 256
MAX_ENV_NAME = 256
MAX_ENV_VALUE = 32 * 1024
MAX_ENV_TOTAL = 256 * 1024
MAX_LABELS = 64
MAX_LABEL_VALUE = 256
MAX_ARGV = 4096
MAX_COMMAND_BYTES = 256 * 1024
MAX_TEXT = 16 * 1024 * 1024  # a prompt or stdin text (a pasted file); the body cap is the same
MAX_SECONDS = 10 * 365 * 24 * 3600.0
MAX_SEQ = 2**62
SANDBOX_ROOTS = ("/workspace", "/home/user", "/tmp")
SIGNAL_NUMBERS = range(1, signal.SIGRTMAX + 1)

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LABEL_KEY = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def printable(value: str) -> str:
    """A name a person gave, shown in tables and logs: no control characters (no NUL, no newline, no escape)."""
    if _CONTROL.search(value):
        raise ValueError("must be printable: no control characters")
    return value


def _no_nul(value: str) -> str:
    if "\0" in value:
        raise ValueError("must not contain a NUL character")
    return value


def _env(values: dict[str, str]) -> dict[str, str]:
    if len(values) > MAX_ENV_VARS:
        raise ValueError(f"at most {MAX_ENV_VARS} variables")
    total = 0
    for name, value in values.items():
        if len(name) > MAX_ENV_NAME or not _ENV_NAME.fullmatch(name):
            raise ValueError(f"{name[:40]!r} is not a variable name (letters, digits and '_', not first a digit)")
        if "\0" in value:
            raise ValueError(f"the value of {name} contains a NUL character")
        if len(value) > MAX_ENV_VALUE:
            raise ValueError(f"the value of {name} is longer than {MAX_ENV_VALUE} characters")
        total += len(name) + len(value)
    if total > MAX_ENV_TOTAL:
        raise ValueError(f"the variables come to more than {MAX_ENV_TOTAL} characters")
    return values


def _labels(values: dict[str, str]) -> dict[str, str]:
    if len(values) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels")
    for key, value in values.items():
        if not _LABEL_KEY.fullmatch(key):
            raise ValueError(
                f"label key {key[:40]!r} must be 1 to 63 letters, digits, '.', '_', '-' or '/', "
                "starting and ending with a letter or digit"
            )
        if len(value) > MAX_LABEL_VALUE or _CONTROL.search(value):
            raise ValueError(f"the value of label {key} must be at most {MAX_LABEL_VALUE} printable characters")
    return values


def _sandbox_dir(value: str) -> str:
    """An absolute directory inside the sandbox's writable roots, as written (``..`` refused, not resolved)."""
    if not value.startswith("/") or ".." in value.split("/"):
        raise ValueError("must be an absolute path without '..'")
    normal = posixpath.normpath(value)
    if not any(normal == root or normal.startswith(root + "/") for root in SANDBOX_ROOTS):
        raise ValueError(f"must be under {', '.join(SANDBOX_ROOTS)}")
    return normal


def _absolute_dir(value: str) -> str:
    if not value.startswith("/") or ".." in value.split("/"):
        raise ValueError("must be an absolute path without '..'")
    return posixpath.normpath(_no_nul(value))


def _command(value: str | list[str]) -> str | list[str]:
    """A shell command line, or an argv list."""
    parts = [value] if isinstance(value, str) else value
    if not parts or not parts[0]:
        raise ValueError("must not be empty")
    if len(parts) > MAX_ARGV:
        raise ValueError(f"at most {MAX_ARGV} arguments")
    if sum(len(part) for part in parts) > MAX_COMMAND_BYTES:
        raise ValueError(f"comes to more than {MAX_COMMAND_BYTES} characters")
    if any("\0" in part for part in parts):
        raise ValueError("must not contain a NUL character")
    return value


def _signal(value: int | str) -> int | str:
    if isinstance(value, int) and value not in SIGNAL_NUMBERS:
        raise ValueError(f"signal numbers run from 1 to {SIGNAL_NUMBERS[-1]}")
    return value


EnvMap = Annotated[dict[str, str], AfterValidator(_env)]
Labels = Annotated[dict[str, str], AfterValidator(_labels)]
SandboxDir = Annotated[str, Field(min_length=1, max_length=MAX_PATH), AfterValidator(_sandbox_dir)]
AbsoluteDir = Annotated[str, Field(min_length=1, max_length=MAX_PATH), AfterValidator(_absolute_dir)]
SandboxPath = Annotated[str, Field(min_length=1, max_length=MAX_PATH), AfterValidator(_no_nul)]
Command = Annotated[str | list[str], AfterValidator(_command)]
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
Seconds = Annotated[float, Field(gt=0, le=MAX_SECONDS)]
Signal = Annotated[int | Annotated[str, Field(max_length=16)], AfterValidator(_signal)]
Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_nul)]
Port = Annotated[int, Field(ge=1, le=65535, description="A TCP port inside the sandbox")]
ShortList = Annotated[list[Name], Field(max_length=256)]
