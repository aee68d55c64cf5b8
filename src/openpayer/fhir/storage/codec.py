"""How resource bytes are kept: orjson-serialised once at write, zlib-compressed, served as stored."""

from __future__ import annotations

import zlib
from typing import Any

import orjson

_LEVEL = 3  # a good point between write cost and size for 1–20 KB JSON documents


def encode(resource: dict[str, Any]) -> tuple[bytes, bytes]:
    """Return (json bytes, compressed bytes)."""
    raw = orjson.dumps(resource)
    return raw, zlib.compress(raw, _LEVEL)


def decode(compressed: bytes) -> bytes:
    return zlib.decompress(compressed)
