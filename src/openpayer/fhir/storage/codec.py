"""How resource bytes are kept: orjson-serialised once at write, compressed, served as stored.

New bytes are Zstandard frames (level 1, with a checksum): for a 7.8 KB ExplanationOfBenefit 0.025 ms to
compress and 0.010 ms to decompress, against 0.073 and 0.024 ms for the zlib (level 3) that stores wrote
before, 1 % larger (6 % for a 1.8 KB directory resource; docs/performance.md, Loading). Those older zlib
streams still decode: a Zstandard frame begins with its magic number, which is never a valid zlib header.
"""

from __future__ import annotations

import threading
import zlib
from typing import Any

import orjson
import zstandard

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_LEVEL = 1  # level 3 is 40 % slower for 2 % less


class _Contexts(threading.local):
    """Zstandard contexts are reused (a new one costs more than a small frame) but not thread-safe."""

    def __init__(self) -> None:
        self.compressor = zstandard.ZstdCompressor(level=_LEVEL, write_checksum=True)
        self.decompressor = zstandard.ZstdDecompressor()


_contexts = _Contexts()


def encode(resource: dict[str, Any]) -> tuple[bytes, bytes]:
    """Return (json bytes, compressed bytes)."""
    raw = orjson.dumps(resource)
    return raw, _contexts.compressor.compress(raw)


def decode(compressed: bytes) -> bytes:
    if compressed[:4] == _ZSTD_MAGIC:
        return _contexts.decompressor.decompress(compressed)
    return zlib.decompress(compressed)
