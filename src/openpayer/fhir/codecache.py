"""The code the FHIR engine generates, compiled once per text and kept on disk as Python keeps bytecode.

The validator (`validation.walkers`) and the index extraction (`search.extract_codegen`) write Python for
each type they meet: 57 functions and 840 KB of source for 28 resource types, the seed's among them.
Compiling them took 0.11 s of the 0.26 s the loader's warm-up spent on one core before it forked its
workers, and every process that validates or indexes (a server's workers, each load, each test process)
paid it again; unmarshalling the same code objects takes 1 ms (docs/performance.md, Seeding,
"Twenty-seventh session").

An entry is found by a hash of everything its code object depends on: the interpreter's bytecode format
(`importlib.util.MAGIC_NUMBER`), the optimisation level, the file name given to `compile` and the source
text. A changed generator makes a different text, so an entry is never stale, only missing. Entries live
where Python puts this package's bytecode (`__pycache__/generated` beside this module, or under
`sys.pycache_prefix`) and, like bytecode, are written unless `sys.dont_write_bytecode`
(`PYTHONDONTWRITEBYTECODE`); a directory that cannot be written or an unreadable entry only means compiling.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import marshal
import os
import sys
import tempfile
from pathlib import Path
from types import CodeType

_HERE = Path(__file__).resolve().parent


def compiled(source: str, filename: str) -> CodeType:
    """`compile(source, filename, "exec")`, from the cache when an earlier process compiled the same."""
    key = hashlib.sha256(
        b"\0".join(
            (
                importlib.util.MAGIC_NUMBER,
                str(sys.flags.optimize).encode(),
                filename.encode(),
                source.encode(),
            )
        )
    ).hexdigest()
    path = cache_directory() / f"{key}.{sys.implementation.cache_tag}.bin"
    try:
        code = marshal.loads(path.read_bytes())  # noqa: S302 - ours, trusted as this package's bytecode is
    except (OSError, EOFError, ValueError, TypeError):
        code = None
    if isinstance(code, CodeType) and code.co_filename == filename:
        return code
    code = compile(source, filename, "exec")
    if not sys.dont_write_bytecode:
        _store(path, marshal.dumps(code))
    return code


def cache_directory() -> Path:
    """Where the entries are: as for this package's bytecode, under `sys.pycache_prefix` if it is set."""
    if sys.pycache_prefix:
        return Path(sys.pycache_prefix) / _HERE.relative_to(_HERE.anchor) / "generated"
    return _HERE / "__pycache__" / "generated"


def _store(path: Path, data: bytes) -> None:
    """Write whole or not at all: another process may be reading or writing the same entry."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    except OSError:
        return  # a read-only installation compiles every time, as before
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
