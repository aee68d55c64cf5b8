"""Access to the vendored FHIR R4 4.0.1 definitions in `openpayer/fhir/data/` (see PROVENANCE.md there)."""

from __future__ import annotations

import gzip
from functools import cache
from importlib import resources
from typing import Any

import orjson


def read(name: str) -> Any:
    """Parse a vendored definition file by stem, e.g. ``read("profiles-resources")``, without caching it.

    Use it for the large bundles that are digested once into a compact form (validation model, summary
    element lists), so that the ~100 MB of parsed JSON is freed afterwards.
    """
    data = resources.files("openpayer.fhir").joinpath("data", f"{name}.json.gz").read_bytes()
    return orjson.loads(gzip.decompress(data))


@cache
def load(name: str) -> Any:
    """Load and keep a vendored definition file (for the small ones used at run time)."""
    return read(name)
