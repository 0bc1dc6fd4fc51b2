"""Which requests are a preview's, and the URLs given out: one module builds and matches both."""

from __future__ import annotations

import pytest

from cove.preview.urls import Target, match, preview_url

SBX = "sbx_0123456789abcdef"


def test_path_based_urls_and_their_match() -> None:
    url = preview_url(SBX, 8000, "http://cove.example:7420/", None)
    assert url == f"http://cove.example:7420/v1/sandboxes/{SBX}/ports/8000/"
    prefix = f"/v1/sandboxes/{SBX}/ports/8000"
    assert match(f"{prefix}/a/b%2Fc".encode(), "cove.example", None) == Target(SBX, 8000, prefix, b"/a/b%2Fc")
    assert match(prefix.encode(), None, None) == Target(SBX, 8000, prefix, b"")  # the bare prefix


def test_host_based_urls_and_their_match() -> None:
    assert preview_url(SBX, 3000, "https://cove.example", "preview.example") == f"https://3000-{SBX}.preview.example/"
    assert preview_url(SBX, 3000, "http://127.0.0.1:7420", "localhost:7420") == f"http://3000-{SBX}.localhost:7420/"
    for host in (f"3000-{SBX}.preview.example", f"3000-{SBX.upper()}.PREVIEW.example:443"):
        assert match(b"/v1/sandboxes", host, "preview.example") == Target(SBX, 3000, "", b"/v1/sandboxes")
    assert match(b"/", f"3000-{SBX}.localhost:7420", "localhost:7420") == Target(SBX, 3000, "", b"/")


@pytest.mark.parametrize(
    ("path", "host"),
    [
        (b"/v1/sandboxes", "cove.example"),
        (f"/v1/sandboxes/{SBX}/ports".encode(), None),
        (f"/v1/sandboxes/{SBX}/ports/0/".encode(), None),
        (f"/v1/sandboxes/{SBX}/ports/65536/".encode(), None),
        (f"/v1/sandboxes/{SBX}/ports/080/".encode(), None),
        (b"/v1/sandboxes/sbx_nothex/ports/80/", None),
        (b"/", f"70000-{SBX}.preview.example"),
        (b"/", f"80-{SBX}.elsewhere.example"),
        (b"/", f"80-{SBX}.sub.preview.example"),
        (b"/", f"x80-{SBX}.preview.example"),
    ],
)
def test_what_is_not_a_preview(path: bytes, host: str | None) -> None:
    assert match(path, host, "preview.example") is None
