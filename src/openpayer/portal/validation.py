"""Rules for what a developer registers: redirect URIs, web addresses, e-mail addresses, logos, keys, scopes.

Each function returns the value as it will be stored, or raises `Invalid` naming the field. The rules:

- Redirect URIs are exact strings (RFC 6749 §3.1.2.2, OAuth 2.0 Security BCP §4.1: no patterns, compared
  character for character), absolute, without fragment or user info, and `https` except for loopback
  addresses (`http://127.0.0.1`, `http://[::1]`, `http://localhost`, any port: RFC 8252 §7.3 for native apps).
- Web addresses shown to members (website, privacy policy, terms) are `https` with a host name.
- A logo is PNG or JPEG, recognised by its bytes (never by the upload's name or declared type), at most
  `LOGO_MAX_BYTES`, and between `LOGO_MIN_PIXELS` and `LOGO_MAX_PIXELS` on each side. SVG is refused: it can
  carry script, and the logo is shown on the member's consent page.
"""

from __future__ import annotations

import ipaddress
import json
import re
import struct
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from openpayer.portal.errors import Invalid
from openpayer.web.refusals import email as email  # re-exported: the portal validates addresses here

MAX_REDIRECT_URIS = 10
MAX_URL_LENGTH = 512
LOGO_MAX_BYTES = 256 * 1024
LOGO_MIN_PIXELS = 16
LOGO_MAX_PIXELS = 1024
LOOPBACK_HOSTS = frozenset({"localhost"})

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_SCOPE = re.compile(
    r"^(?:openid|fhirUser|profile|offline_access|online_access|launch/patient|"
    r"(?:patient|user|system)/(?:\*|[A-Z][A-Za-z]{1,63})\.(?:read|\*|c?r?u?d?s?)(?:\?[^\s]+)?)$"
)


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redirect_uris(values: Iterable[str], *, required: bool = True) -> list[str]:
    """Exact redirect URIs, in the order given, without duplicates (none only when not `required`)."""
    result: list[str] = []
    for raw in values:
        uri = raw.strip()
        if not uri:
            continue
        if len(uri) > MAX_URL_LENGTH or any(c.isspace() for c in uri):
            raise Invalid(f"redirect URI {uri[:80]!r} is too long or contains spaces", "redirect_uris")
        try:
            parts = urlsplit(uri)
            host = parts.hostname or ""
            parts.port  # noqa: B018 - raises ValueError on a port that is not a number
        except ValueError as exc:
            raise Invalid(f"redirect URI {uri[:80]!r} is not a valid URL", "redirect_uris") from exc
        if parts.fragment or "#" in uri:
            raise Invalid(f"redirect URI {uri!r} must not contain a fragment", "redirect_uris")
        if parts.username is not None or parts.password is not None:
            raise Invalid(f"redirect URI {uri!r} must not contain user information", "redirect_uris")
        if not parts.scheme or (parts.scheme in ("http", "https") and not host):
            raise Invalid(f"redirect URI {uri!r} must be an absolute URL with a host", "redirect_uris")
        if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(host)):
            if uri not in result:
                result.append(uri)
            continue
        raise Invalid(
            f"redirect URI {uri!r} must use https (http is allowed only for 127.0.0.1, [::1] and localhost)",
            "redirect_uris",
        )
    if not result and required:
        raise Invalid("at least one redirect URI is required", "redirect_uris")
    if len(result) > MAX_REDIRECT_URIS:
        raise Invalid(f"at most {MAX_REDIRECT_URIS} redirect URIs", "redirect_uris")
    return result


def https_url(value: str, field: str, *, required: bool = True) -> str | None:
    url = value.strip()
    if not url:
        if required:
            raise Invalid(f"{field.replace('_', ' ')} is required", field)
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        raise Invalid(f"{url[:80]!r} is not a valid URL", field) from exc
    if len(url) > MAX_URL_LENGTH or parts.scheme != "https" or not host or any(c.isspace() for c in url):
        raise Invalid(f"{field.replace('_', ' ')} must be an https:// address", field)
    if parts.username is not None or parts.password is not None:
        raise Invalid(f"{field.replace('_', ' ')} must not contain user information", field)
    return url


def domain(value: str) -> str:
    """A host name (`example-app.com`): breach alerts and invitations are matched on it."""
    name = value.strip().lower().rstrip(".")
    if name.startswith(("http://", "https://")):
        name = urlsplit(name).hostname or ""
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise Invalid(f"{value[:80]!r} is not a domain name such as example.com", "domain")
    return name


def text(value: str, field: str, *, max_length: int, required: bool = True) -> str:
    cleaned = value.strip()
    if required and not cleaned:
        raise Invalid(f"{field.replace('_', ' ')} is required", field)
    if len(cleaned) > max_length:
        raise Invalid(f"{field.replace('_', ' ')} is longer than {max_length} characters", field)
    return cleaned


def logo(data: bytes) -> str:
    """The logo's media type from its bytes; raises `Invalid` for anything but a small PNG or JPEG."""
    if len(data) > LOGO_MAX_BYTES:
        raise Invalid(f"the logo is larger than {LOGO_MAX_BYTES // 1024} KiB", "logo")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        media, size = "image/png", _png_size(data)
    elif data.startswith(b"\xff\xd8\xff"):
        media, size = "image/jpeg", _jpeg_size(data)
    else:
        raise Invalid("the logo must be a PNG or JPEG image", "logo")
    if size is None:
        raise Invalid("the logo image is damaged or truncated", "logo")
    width, height = size
    if not (LOGO_MIN_PIXELS <= width <= LOGO_MAX_PIXELS and LOGO_MIN_PIXELS <= height <= LOGO_MAX_PIXELS):
        raise Invalid(
            f"the logo must be between {LOGO_MIN_PIXELS} and {LOGO_MAX_PIXELS} pixels on each side "
            f"(it is {width}x{height})",
            "logo",
        )
    return media


def _png_size(data: bytes) -> tuple[int, int] | None:
    # PNG §11.2.2: the first chunk is IHDR, width and height as 4-byte big-endian integers.
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    # JPEG (ITU T.81 §B.2): walk the marker segments to the first start-of-frame (SOF0-SOF15 but DHT,
    # JPG and DAC), whose payload holds precision, height and width.
    index = 2
    while index + 4 <= len(data):
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        if marker == 0xFF:  # fill byte
            index += 1
            continue
        length = int.from_bytes(data[index + 2 : index + 4], "big")
        if length < 2:
            return None
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if index + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[index + 5 : index + 9])
            return int(width), int(height)
        index += 2 + length
    return None


def jwks(value: str | dict[str, Any]) -> dict[str, Any]:
    """A JSON Web Key Set with at least one key and no private parts (the server needs only public keys)."""
    try:
        parsed = json.loads(value) if isinstance(value, str) else value
    except ValueError as exc:
        raise Invalid("the JWKS is not valid JSON", "jwks") from exc
    keys = parsed.get("keys") if isinstance(parsed, dict) else None
    if not isinstance(keys, list) or not keys or not all(isinstance(k, dict) and "kty" in k for k in keys):
        raise Invalid('the JWKS must be an object {"keys": [...]} with at least one key', "jwks")
    if any(private in key for key in keys for private in ("d", "p", "q", "dp", "dq", "qi", "k")):
        raise Invalid("the JWKS contains private key material: register only public keys", "jwks")
    return parsed


def scopes(values: Iterable[str], *, backend_access: bool) -> list[str]:
    """Requested SMART scopes; `system/` scopes only when backend access is asked for, and then required."""
    result: list[str] = []
    for raw in values:
        for scope in raw.split():
            if not _SCOPE.match(scope):
                raise Invalid(f"{scope[:80]!r} is not a SMART scope this server grants", "scopes")
            if scope.startswith("system/") and not backend_access:
                raise Invalid(f"{scope!r} is a backend scope: ask for backend access to use it", "scopes")
            if scope not in result:
                result.append(scope)
    if backend_access and not any(s.startswith("system/") for s in result):
        raise Invalid("backend access needs at least one system/ scope", "scopes")
    return result
