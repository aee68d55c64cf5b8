"""Vendor the SearchParameters of the implementation guides we serve into the openpayer package.

Reads every ``SearchParameter-*.json`` of the IG packages under ``../shared/ig/`` (their provenance is in
``../shared/SOURCES.md``) and writes them, unchanged, as one FHIR ``collection`` Bundle to
``src/openpayer/fhir/data/ig-search-parameters.json.gz``. Each entry carries the package it came from in
the ``package-source`` extension (``packageId`` and ``version`` from the package's ``package.json``), because
US Core 3.1.1 and 6.1.0 publish SearchParameters under the same canonical URLs and the registry prefers the
newer one.

The output is deterministic: folders and files are read in sorted order, the JSON is serialised with sorted
keys, and the gzip header carries no file name and a zero timestamp. Run from the repository root::

    .venv/bin/python scripts/vendor_ig_search_parameters.py [--shared ../shared] [--check]

``--check`` exits 1 when the vendored file differs from what the script would write.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "src" / "openpayer" / "fhir" / "data" / "ig-search-parameters.json.gz"
PACKAGE_SOURCE = "http://hl7.org/fhir/StructureDefinition/package-source"


def build_bundle(shared: Path) -> dict:
    entries = []
    for ig_dir in sorted(p for p in (shared / "ig").iterdir() if p.is_dir()):
        manifest = json.loads((ig_dir / "package.json").read_text(encoding="utf-8-sig"))
        files = sorted(ig_dir.glob("SearchParameter-*.json"))
        if not files:
            continue
        for file in files:
            resource = json.loads(file.read_text(encoding="utf-8-sig"))
            if resource.get("resourceType") != "SearchParameter":
                continue
            entries.append(
                {
                    "fullUrl": resource["url"],
                    "extension": [
                        {
                            "url": PACKAGE_SOURCE,
                            "extension": [
                                {"url": "packageId", "valueId": manifest["name"]},
                                {"url": "version", "valueString": manifest["version"]},
                            ],
                        }
                    ],
                    "resource": resource,
                }
            )
    return {"resourceType": "Bundle", "id": "ig-search-parameters", "type": "collection", "entry": entries}


def serialise(bundle: dict) -> bytes:
    text = json.dumps(bundle, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO / ".." / "shared")
    parser.add_argument("--check", action="store_true", help="only compare with the vendored file")
    args = parser.parse_args(argv)
    bundle = build_bundle(args.shared.resolve())
    data = serialise(bundle)
    if args.check:
        same = OUTPUT.exists() and OUTPUT.read_bytes() == data
        print("up to date" if same else f"{OUTPUT} differs; re-run without --check")
        return 0 if same else 1
    OUTPUT.write_bytes(data)
    print(
        f"wrote {len(bundle['entry'])} SearchParameters ({len(data):,} bytes) to {OUTPUT.relative_to(REPO)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
