"""Write the structural validator's index, built from the vendored R4 definitions, into the package.

`openpayer.fhir.validation.builder.build_index_from_vendored` boils the vendored R4 bundles
(``profiles-resources``, ``profiles-types``, ``valuesets``: ~100 MB once parsed) down to the few facts per
element the validator needs. This script writes that index to
``src/openpayer/fhir/data/validation-index.json.gz``, which `openpayer.fhir.validation.model.get_model`
reads instead of parsing the bundles in every process. Rerun it whenever the builder or the vendored
bundles change (``tests/fhir/validation/test_vendored_index.py`` fails until then).

The output is deterministic: orjson keeps the builder's order, and the gzip header carries no file name
and a zero timestamp. Run from the repository root::

    .venv/bin/python scripts/vendor_validation_index.py [--check]

``--check`` exits 1 when the vendored file differs from what the script would write.
"""

from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path

import orjson

from openpayer.fhir.validation.builder import VENDORED_INDEX, build_index_from_vendored

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "src" / "openpayer" / "fhir" / "data" / f"{VENDORED_INDEX}.json.gz"


def render() -> bytes:
    return gzip.compress(orjson.dumps(build_index_from_vendored()), compresslevel=9, mtime=0)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the vendored file is out of date")
    args = parser.parse_args()
    data = render()
    if args.check:
        current = OUTPUT.read_bytes() if OUTPUT.exists() else b""
        if current != data:
            print(f"{OUTPUT.relative_to(REPO)} is out of date: run scripts/vendor_validation_index.py")
            return 1
        print(f"{OUTPUT.relative_to(REPO)} is up to date")
        return 0
    OUTPUT.write_bytes(data)
    print(f"wrote {OUTPUT.relative_to(REPO)} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
