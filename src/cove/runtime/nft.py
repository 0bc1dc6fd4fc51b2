"""nftables through libnftables, in-process: one call applies a whole batch of commands as one transaction.

The ``nft`` command would cost a fork and an exec per change (about 3 ms here); the library parses the same
text and commits it in about 0.1–0.3 ms, and a batch either applies whole or not at all — a sandbox is never
left half-filtered. The text never holds anything a sandbox chose: only addresses parsed by ``ipaddress``,
numbers and names Cove makes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import threading
from typing import Any

NFT_CTX_OUTPUT_JSON = 1 << 4


class NftError(RuntimeError):
    """nftables refused a batch; the message is libnftables' own, with the batch's first lines for context."""


class NftUnavailable(NftError):
    """libnftables is not installed (Debian: ``nftables``, which the Makefile's system-deps installs)."""


class Nft:
    """A libnftables context. Calls are serialized: a context is not safe to share between threads."""

    def __init__(self) -> None:
        path = ctypes.util.find_library("nftables") or "libnftables.so.1"
        try:
            lib = ctypes.CDLL(path)
        except OSError as exc:
            raise NftUnavailable(f"libnftables is missing ({exc}); install the nftables package") from exc
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        self._lib = lib
        self._ctx = lib.nft_ctx_new(0)
        lib.nft_ctx_buffer_output(self._ctx)
        lib.nft_ctx_buffer_error(self._ctx)
        self._lock = threading.Lock()

    def run(self, commands: str) -> str:
        """Apply ``commands`` (nft syntax, one per line) as one transaction; returns what nft printed."""
        with self._lock:
            return self._run(commands, 0)

    def json(self, command: str) -> dict[str, Any]:
        """A listing command's output as nft's JSON (``{"nftables": [...]}``)."""
        with self._lock:
            text = self._run(command, NFT_CTX_OUTPUT_JSON)
        parsed: dict[str, Any] = json.loads(text) if text.strip() else {"nftables": []}
        return parsed

    def _run(self, commands: str, flags: int) -> str:
        self._lib.nft_ctx_output_set_flags(self._ctx, flags)
        code = self._lib.nft_run_cmd_from_buffer(self._ctx, commands.encode())
        output = (self._lib.nft_ctx_get_output_buffer(self._ctx) or b"").decode(errors="replace")
        error = (self._lib.nft_ctx_get_error_buffer(self._ctx) or b"").decode(errors="replace")
        if code != 0:
            head = "\n".join(commands.strip().splitlines()[:3])
            raise NftError(f"nft refused the batch ({error.strip() or 'no message'}); batch began: {head}")
        return output

    def close(self) -> None:
        with self._lock:
            if self._ctx:
                self._lib.nft_ctx_free(self._ctx)
                self._ctx = None
