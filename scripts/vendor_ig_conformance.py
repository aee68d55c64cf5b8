"""Vendor a compact conformance index of the implementation guides we serve into the openpayer package.

Reads the IG packages under ``../shared/ig/`` (provenance in ``../shared/SOURCES.md``) and writes
``src/openpayer/conformance/data/ig-conformance.json.gz``, one JSON object with:

- ``guides``: per IG package, its id, version, ImplementationGuide canonical, title, the API that serves it
  (``fhir`` Patient Access or ``directory`` Provider Directory + Formulary) and its server
  CapabilityStatement canonical;
- ``profiles``: every resource profile (StructureDefinition ``kind=resource``, ``derivation=constraint``):
  canonical URL, resource type, name, guide;
- ``statements``: the server CapabilityStatement of each guide reduced to what a server must do: per
  resource type its expectation, supported profiles, search parameters (name, definition, type,
  expectation), search-parameter combinations, ``_include``/``_revinclude`` values and operations, each with
  its expectation (``SHALL``, ``SHOULD``, ``MAY``; ``null`` when the statement gives none);
- ``parameters``: per guide, ``Type:code`` -> SearchParameter URL for every parameter its statement uses
  (search parameters, the parameters of its include values, those its chains name on the target types);
- ``definitions``: for each of those SearchParameters, its code, base, type, FHIRPath expression, targets and
  declared ``chain`` names (from the IG package, else from FHIR R4 core
  ``../shared/fhir-r4/search-parameters.json``).

The US Drug Formulary statement is the one the Inferno kit uses in place of the packaged one
(``us-drug-formulary-2.0.1/kit-supersede/``: its include values carry the source type, e.g.
``InsurancePlan:formulary-coverage``). The output is deterministic (sorted folders and files, sorted keys,
gzip without name or timestamp). Run from the repository root::

    .venv/bin/python scripts/vendor_ig_conformance.py [--shared ../shared] [--check]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "src" / "openpayer" / "conformance" / "data" / "ig-conformance.json.gz"
EXPECTATION = "http://hl7.org/fhir/StructureDefinition/capabilitystatement-expectation"
COMBINATION = "http://hl7.org/fhir/StructureDefinition/capabilitystatement-search-parameter-combination"

# folder -> (short key, API that serves it, server CapabilityStatement file relative to the folder)
GUIDES: dict[str, tuple[str, str, str]] = {
    "carin-bb-2.0.0": ("carin-bb", "fhir", "CapabilityStatement-c4bb.json"),
    "us-core-3.1.1": ("us-core-3.1.1", "fhir", "CapabilityStatement-us-core-server.json"),
    "us-core-6.1.0": ("us-core-6.1.0", "fhir", "CapabilityStatement-us-core-server.json"),
    "pdex-2.0.0": ("pdex", "fhir", "CapabilityStatement-pdex-server.json"),
    "plan-net-1.1.0": ("plan-net", "directory", "CapabilityStatement-plan-net.json"),
    "us-drug-formulary-2.0.1": (
        "formulary",
        "directory",
        "kit-supersede/CapabilityStatement-usdf-server.json",
    ),
}


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8-sig"))


def _expectation(element: dict[str, Any] | None) -> str | None:
    for ext in (element or {}).get("extension", []) or []:
        if ext.get("url") == EXPECTATION:
            value: str = ext.get("valueCode")
            return value
    return None


def _listed(values: list[str], meta: list[dict[str, Any] | None] | None) -> list[dict[str, Any]]:
    meta = meta or []
    return [
        {"value": value, "expectation": _expectation(meta[i] if i < len(meta) else None)}
        for i, value in enumerate(values)
    ]


def _resource(entry: dict[str, Any]) -> dict[str, Any]:
    combos = []
    for ext in entry.get("extension", []) or []:
        if ext.get("url") != COMBINATION:
            continue
        combos.append(
            {
                "expectation": _expectation(ext),
                "required": [
                    x["valueString"] for x in ext.get("extension", []) if x.get("url") == "required"
                ],
            }
        )
    profiles = list(entry.get("supportedProfile", []))
    if entry.get("profile"):
        profiles.insert(0, entry["profile"])
    return {
        "type": entry["type"],
        "expectation": _expectation(entry),
        "profiles": profiles,
        "interactions": [
            {"code": i["code"], "expectation": _expectation(i)} for i in entry.get("interaction", [])
        ],
        "searchParams": [
            {
                "name": p["name"],
                "definition": p.get("definition"),
                "type": p["type"],
                "expectation": _expectation(p),
            }
            for p in entry.get("searchParam", [])
        ],
        "combinations": combos,
        "includes": _listed(entry.get("searchInclude", []), entry.get("_searchInclude")),
        "revincludes": _listed(entry.get("searchRevInclude", []), entry.get("_searchRevInclude")),
        "operations": [
            {"name": o["name"], "definition": o["definition"], "expectation": _expectation(o)}
            for o in entry.get("operation", [])
        ],
    }


def _definition(sp: dict[str, Any]) -> dict[str, Any]:
    return {
        "code": sp["code"],
        "base": sp.get("base", []),
        "type": sp["type"],
        "expression": sp.get("expression"),
        "target": sp.get("target", []),
        "chain": sp.get("chain", []),
        "modifier": sp.get("modifier", []),
        "comparator": sp.get("comparator", []),
    }


def build(shared: Path) -> dict[str, Any]:
    core_bundle = _read(shared / "fhir-r4" / "search-parameters.json")
    core = {e["resource"]["url"]: e["resource"] for e in core_bundle["entry"]}
    guides, profiles, statements = [], [], []
    ig_params: dict[str, dict[str, Any]] = {}
    wanted: set[str] = set()
    guide_sps: dict[str, list[dict[str, Any]]] = {}
    for folder, (key, api, cs_file) in GUIDES.items():
        ig_dir = shared / "ig" / folder
        manifest = _read(ig_dir / "package.json")
        ig = _read(next(iter(sorted(ig_dir.glob("ImplementationGuide-*.json")))))
        cs = _read(ig_dir / cs_file)
        guides.append(
            {
                "key": key,
                "folder": folder,
                "package": manifest["name"],
                "version": manifest["version"],
                "canonical": ig["url"],
                "title": ig.get("title") or ig.get("name"),
                "api": api,
                "server": cs["url"],
            }
        )
        for file in sorted(ig_dir.glob("StructureDefinition-*.json")):
            sd = _read(file)
            if sd.get("kind") == "resource" and sd.get("derivation") == "constraint":
                profiles.append({"url": sd["url"], "type": sd["type"], "name": sd["name"], "guide": key})
        for file in sorted(ig_dir.glob("SearchParameter-*.json")):
            sp = _read(file)
            ig_params[sp["url"]] = sp  # US Core 6.1.0 after 3.1.1: the newer one, as the registry has it
            guide_sps.setdefault(key, []).append(sp)
        resources = [
            _resource(r) for rest in cs["rest"] if rest["mode"] == "server" for r in rest["resource"]
        ]
        for resource in resources:
            wanted.update(p["definition"] for p in resource["searchParams"] if p["definition"])
        statements.append(
            {"guide": key, "url": cs["url"], "version": cs.get("version"), "resources": resources}
        )
    params = {}
    for statement in statements:
        by_code = _parameters_used(
            statement["resources"], guide_sps.get(statement["guide"], []), ig_params, core
        )
        params[statement["guide"]] = by_code
        wanted.update(by_code.values())
    definitions = {}
    for url in sorted(wanted):
        source = ig_params.get(url) or core.get(url)
        if source is not None:
            definitions[url] = _definition(source)
    return {
        "guides": guides,
        "profiles": profiles,
        "statements": statements,
        "definitions": definitions,
        "parameters": params,
    }


def _parameters_used(
    resources: list[dict[str, Any]],
    own: list[dict[str, Any]],
    ig_params: dict[str, dict[str, Any]],
    core: dict[str, dict[str, Any]],
) -> dict[str, str]:
    """`Type:code` -> SearchParameter URL for every parameter a statement uses: its search parameters, the
    parameters of its `_include`/`_revinclude` values, and the parameters its chains name on the targets.
    Unlisted ones resolve to the guide's own SearchParameters, then any served guide's, then R4 core."""
    found: dict[str, str] = {}
    for resource in resources:
        for use in resource["searchParams"]:
            if use["definition"]:
                found[f"{resource['type']}:{use['name']}"] = use["definition"]
    pools = [own, list(ig_params.values()), list(core.values())]

    def resolve(rtype: str, code: str) -> None:
        key = f"{rtype}:{code}"
        if key in found or code.startswith("_") or code == "*":
            return
        for pool in pools:
            hit = next((sp for sp in pool if sp["code"] == code and rtype in sp.get("base", [])), None)
            if hit is not None:
                found[key] = hit["url"]
                return

    for resource in resources:
        for item in resource["includes"] + resource["revincludes"]:
            parts = item["value"].split(":")
            if len(parts) >= 2:
                resolve(parts[0], parts[1])
    for url in sorted(set(found.values())):
        sp = ig_params.get(url) or core.get(url) or {}
        for target in sp.get("target", []):
            for chained in sp.get("chain", []):
                resolve(target, chained)
    return dict(sorted(found.items()))


def serialise(index: dict[str, Any]) -> bytes:
    text = json.dumps(index, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO / ".." / "shared")
    parser.add_argument("--check", action="store_true", help="only compare with the vendored file")
    args = parser.parse_args(argv)
    index = build(args.shared.resolve())
    data = serialise(index)
    if args.check:
        same = OUTPUT.exists() and OUTPUT.read_bytes() == data
        print("up to date" if same else f"{OUTPUT} differs; re-run without --check")
        return 0 if same else 1
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_bytes(data)
    counts = ", ".join(f"{s['guide']}: {len(s['resources'])} types" for s in index["statements"])
    print(
        f"wrote {len(index['profiles'])} profiles, {len(index['definitions'])} search parameter definitions "
        f"and 6 statements ({counts}); {len(data):,} bytes to {OUTPUT.relative_to(REPO)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
