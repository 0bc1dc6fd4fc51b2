"""HTTP/1.1 message heads as a proxy reads them from a peer it does not trust: the model proxy's clients (a
sandbox's CLI) and a preview's app (whatever listens in a sandbox).

One strict parse refuses what a lenient parser further on could read differently (request smuggling, header
injection) and what the server's own HTTP layer would choke on: a bare CR or LF, a NUL or another control
character, a header name that is not a token (a space before the colon, obsolete line folding).
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # CR and LF are counted apart; HTAB is allowed


class MalformedHead(ValueError):
    """A message head that is not strict HTTP/1.1."""


def parse_head(raw: bytes) -> tuple[str, list[tuple[str, str]]]:
    """(start line, headers) of a message head ``raw``, which ends with its blank line (``\\r\\n\\r\\n``)."""
    text = raw[:-4].decode("latin-1")
    lines = text.split("\r\n")
    # Checked once on the whole head (the model proxy does this twice a model call).
    breaks = len(lines) - 1
    if text.count("\r") != breaks or text.count("\n") != breaks or _CONTROL.search(text):
        raise MalformedHead("malformed head: a bare CR or LF, a NUL or another control character")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name):
            raise MalformedHead(f"malformed header line {line[:40]!r}")
        headers.append((name, value.strip(" \t")))
    return lines[0], headers


MAX_CHUNK_LINE = 1024  # a chunk's size line, extensions included
MAX_TRAILER = 64 * 1024


class ChunkedBody:
    """A chunked message body passing through as it is read, in whatever pieces the socket gives: how much of each
    piece is the body's (a relay forwards exactly that, framing and all, in one write however many chunks the
    piece holds), what payload it carries (without the framing), and when the body is over. The framing is
    checked as strictly as a head is; the size line and trailer are bounded."""

    def __init__(self) -> None:
        self._pending = bytearray()  # a size line, a chunk's closing CRLF or the trailer, still incomplete
        self._left = 0  # payload bytes of the current chunk still to come
        self._state = "size"  # size, data, end (the CRLF after a chunk's payload), trailer, done

    @property
    def done(self) -> bool:
        return self._state == "done"

    def feed(self, data: bytes) -> tuple[int, bytes]:
        """(bytes of ``data`` that are the body's, the payload among them); past its end, the rest is not."""
        payload = bytearray()
        at = 0
        while at < len(data) and self._state != "done":
            if self._state == "data":
                taken = min(self._left, len(data) - at)
                payload += data[at : at + taken]
                at += taken
                self._left -= taken
                if self._left == 0:
                    self._state = "end"
                continue
            at = self._framing(data, at)
        return at, bytes(payload)

    def _framing(self, data: bytes, at: int) -> int:
        """Take framing bytes (a size line, a chunk's CRLF, the trailer) from ``data`` at ``at``."""
        if self._state == "end":
            taken = data[at : at + 2 - len(self._pending)]
            self._pending += taken
            if len(self._pending) == 2:
                if self._pending != b"\r\n":
                    raise MalformedHead("malformed chunked body: a chunk does not end with CRLF")
                self._pending.clear()
                self._state = "size"
            return at + len(taken)
        start = len(self._pending)
        self._pending += data[at:]
        if self._state == "size":
            line_end = self._pending.find(b"\r\n")
            if line_end < 0:
                if len(self._pending) > MAX_CHUNK_LINE:
                    raise MalformedHead("malformed chunked body: a size line too long")
                return len(data)
            size = self._pending[:line_end].split(b";", 1)[0].strip()
            if not size or len(size) > 16 or size.strip(b"0123456789abcdefABCDEF"):
                raise MalformedHead(f"malformed chunked body: chunk size {bytes(size[:20])!r}")
            self._left = int(size, 16)
            self._state = "data" if self._left else "trailer"
            consumed = line_end + 2 - start
            self._pending.clear()
            if self._state == "trailer":
                self._pending += b"\r\n"  # the size line's end: the trailer ends at an empty line after it
            return at + consumed
        # The trailer: header lines, then an empty one (right after the size line when there is none).
        end = self._pending.find(b"\r\n\r\n")
        if end < 0:
            if len(self._pending) > MAX_TRAILER:
                raise MalformedHead("malformed chunked body: a trailer too long")
            return len(data)
        self._state = "done"
        self._pending.clear()
        return at + end + 4 - start
