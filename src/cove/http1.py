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
