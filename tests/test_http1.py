"""The chunked body a relay passes through (``cove.http1.ChunkedBody``): however the socket cuts it, exactly the
body's bytes are taken, its payload comes out whole, and framing that is not strict HTTP/1.1 is refused."""

from __future__ import annotations

import random

import pytest

from cove.http1 import MAX_CHUNK_LINE, MAX_TRAILER, ChunkedBody, MalformedHead


def framed(chunks: list[bytes], trailer: bytes = b"") -> bytes:
    return b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for chunk in chunks) + b"0\r\n" + trailer + b"\r\n"


def relay(wire: bytes, cuts: list[int]) -> tuple[bytes, bytes, ChunkedBody]:
    """Feed ``wire`` cut at ``cuts`` as a relay does: (what it forwards, the payload, the parser)."""
    body, forwarded, payload = ChunkedBody(), b"", b""
    for start, end in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        if body.done:
            break
        taken, data = body.feed(wire[start:end])
        forwarded += wire[start : start + taken]
        payload += data
    return forwarded, payload, body


@pytest.mark.parametrize("trailer", [b"", b"x-checksum: 1\r\n", b"a: 1\r\nb: 2\r\n"])
def test_any_cut_of_a_body_gives_the_body_and_its_payload(trailer: bytes) -> None:
    chunker = random.Random(7)
    for _ in range(300):
        chunks = [chunker.randbytes(chunker.randint(1, 200)) for _ in range(chunker.randint(0, 6))]
        body = framed(chunks, trailer)
        wire = body + b"HTTP/1.1 200 OK\r\n"  # what follows the body is not the body's
        cuts = sorted(chunker.sample(range(1, len(wire)), min(len(wire) - 1, chunker.randint(0, 12))))
        forwarded, payload, parser = relay(wire, cuts)
        assert parser.done and forwarded == body and payload == b"".join(chunks)


def test_every_byte_alone() -> None:
    body = framed([b"event: ping\n\n", b"x" * 300], b"t: 1\r\n")
    forwarded, payload, parser = relay(body, list(range(1, len(body))))
    assert parser.done and forwarded == body and payload == b"event: ping\n\n" + b"x" * 300


@pytest.mark.parametrize(
    "wire",
    [
        b"zz\r\n",  # not hex
        b"-5\r\n",
        b"0x5\r\n",
        b"5\r\nhelloXY",  # a chunk that does not end with CRLF
        b"1" * (MAX_CHUNK_LINE + 1),  # a size line without end
        b"0\r\n" + b"x: y\r\n" * (MAX_TRAILER // 6 + 1),  # a trailer without end
    ],
)
def test_framing_that_is_not_strict_is_refused(wire: bytes) -> None:
    with pytest.raises(MalformedHead):
        ChunkedBody().feed(wire)
