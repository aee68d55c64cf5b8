"""What developers may register: exact https redirect URIs (http for loopback), small PNG/JPEG logos, keys."""

from __future__ import annotations

import struct
import zlib

import pytest

from openpayer.portal import validation
from openpayer.portal.errors import Invalid


def png(width: int, height: int) -> bytes:
    """A real (decodable) PNG: one colour type 0 scanline per row."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def jpeg(width: int, height: int) -> bytes:
    """The header of a baseline JPEG: SOI, a JFIF APP0 segment, then SOF0 with the frame size."""
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"
    return (
        b"\xff\xd8"
        + b"\xff\xe0"
        + struct.pack(">H", len(app0) + 2)
        + app0
        + b"\xff\xc0"
        + struct.pack(">H", len(sof0) + 2)
        + sof0
        + b"\xff\xd9"
    )


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/callback",
        "https://app.example.com:8443/cb?x=1",
        "http://127.0.0.1:3000/callback",
        "http://[::1]/cb",
        "http://localhost:8080/cb",
    ],
)
def test_redirect_uris_accepted_exactly_as_given(uri: str) -> None:
    assert validation.redirect_uris([uri]) == [uri]


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("http://app.example.com/cb", "must use https"),
        ("https://app.example.com/cb#frag", "fragment"),
        ("https://user:pw@app.example.com/cb", "user information"),
        ("/relative/callback", "absolute"),
        ("https:///nohost", "absolute"),
        ("com.example.app:/callback", "must use https"),
        ("javascript:alert(1)", "must use https"),
        ("https://app.example.com/c b", "spaces"),
        ("https://app.example.com:99999/cb", "not a valid URL"),
        ("http://127.0.0.1.evil.example/cb", "must use https"),
    ],
)
def test_redirect_uris_refused(uri: str, reason: str) -> None:
    with pytest.raises(Invalid, match=reason) as caught:
        validation.redirect_uris([uri])
    assert caught.value.field == "redirect_uris"


def test_redirect_uris_are_deduplicated_and_bounded() -> None:
    same = "https://a.example/cb"
    assert validation.redirect_uris([same, " " + same + " ", ""]) == [same]
    with pytest.raises(Invalid, match="at least one"):
        validation.redirect_uris([])
    assert validation.redirect_uris([], required=False) == []
    with pytest.raises(Invalid, match="at most"):
        validation.redirect_uris([f"https://a.example/cb{i}" for i in range(11)])


def test_logo_png_and_jpeg_are_recognised_by_their_bytes() -> None:
    assert validation.logo(png(64, 64)) == "image/png"
    assert validation.logo(jpeg(120, 100)) == "image/jpeg"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "PNG or JPEG"),
        (b"GIF89a" + b"\x00" * 20, "PNG or JPEG"),
        (png(8, 8), "between 16 and 1024"),
        (png(2000, 16), "between 16 and 1024"),
        (jpeg(4096, 4096), "between 16 and 1024"),
        (png(64, 64)[:20], "damaged"),
        (b"\xff\xd8\xff\xe0\x00", "damaged"),
        (png(64, 64) + b"\x00" * (256 * 1024), "larger than"),
    ],
)
def test_logo_refused(data: bytes, reason: str) -> None:
    with pytest.raises(Invalid, match=reason):
        validation.logo(data)


def test_urls_emails_and_domains() -> None:
    assert validation.https_url("https://app.example.com/privacy", "privacy_policy_url")
    with pytest.raises(Invalid, match="https://"):
        validation.https_url("http://app.example.com/privacy", "privacy_policy_url")
    assert validation.https_url("", "terms_url", required=False) is None
    assert validation.email("Dev@Example.COM", "email") == "Dev@example.com"
    with pytest.raises(Invalid):
        validation.email("not-an-address", "email")
    assert validation.domain("https://Example-App.com/") == "example-app.com"
    for bad in ("localhost", "-bad.example", "exa mple.com"):
        with pytest.raises(Invalid):
            validation.domain(bad)


def test_jwks_must_hold_public_keys_only() -> None:
    public = {"keys": [{"kty": "EC", "crv": "P-384", "x": "a", "y": "b"}]}
    assert validation.jwks(public) == public
    with pytest.raises(Invalid, match="private key"):
        validation.jwks({"keys": [{"kty": "EC", "crv": "P-384", "x": "a", "y": "b", "d": "secret"}]})
    with pytest.raises(Invalid, match="at least one key"):
        validation.jwks('{"keys": []}')
    with pytest.raises(Invalid, match="not valid JSON"):
        validation.jwks("{")


def test_scopes_backend_needs_system_and_system_needs_backend() -> None:
    assert validation.scopes(["openid fhirUser patient/*.rs"], backend_access=False) == [
        "openid",
        "fhirUser",
        "patient/*.rs",
    ]
    with pytest.raises(Invalid, match="backend scope"):
        validation.scopes(["system/*.rs"], backend_access=False)
    with pytest.raises(Invalid, match="needs at least one system/"):
        validation.scopes(["patient/*.rs"], backend_access=True)
    with pytest.raises(Invalid, match="not a SMART scope"):
        validation.scopes(["admin"], backend_access=False)
