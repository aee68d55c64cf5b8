"""The vendored IG profiles (``data/ig-profiles.json.gz``, see ``scripts/vendor_ig_profiles.py``).

Profiles are keyed ``url|version``; an unversioned canonical names every shipped version (US Core 3.1.1
and 6.1.0 share their canonical URLs). Value sets are expanded at vendoring time into ``{system: codes}``
where ``None`` stands for "any code of that system" (an include the packages cannot enumerate).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from openpayer.fhir.definitions import load

FILE = "ig-profiles"
CORE_PREFIX = "http://hl7.org/fhir/StructureDefinition/"

Expansion = Mapping[str, frozenset[str] | None]


class Store:
    def __init__(self, document: Mapping[str, Any]) -> None:
        self.profiles: dict[str, dict[str, Any]] = document["profiles"]
        self.canonical: dict[str, list[str]] = document["canonical"]
        self.dependencies: dict[str, dict[str, str]] = document["packages"]
        self.value_sets: dict[str, Expansion] = {
            key: {system: None if codes == "*" else frozenset(codes) for system, codes in systems.items()}
            for key, systems in document["valueSets"].items()
        }
        self._vs_by_url: dict[str, str] = {}
        for key in sorted(self.value_sets, reverse=True):
            self._vs_by_url.setdefault(key.rpartition("|")[0], key)

    def keys_for(self, canonical: str) -> list[str]:
        """``url|version`` keys a canonical names (newest first); empty when not shipped."""
        url, sep, version = canonical.partition("|")
        if sep:
            key = f"{url}|{version}"
            return [key] if key in self.profiles else []
        return list(self.canonical.get(url, ()))

    def key_in_context(self, canonical: str, package: str) -> str | None:
        """The version of a canonical that `package` sees: its own, else its dependency's; else None."""
        keys = self.keys_for(canonical)
        wanted = {package} | {
            f"{name}#{version}" for name, version in self.dependencies.get(package, {}).items()
        }
        for key in keys:
            if self.profiles[key]["package"] in wanted:
                return key
        return None

    def value_set(self, reference: str) -> Expansion | None:
        """Expansion of a value set named by ``url`` or ``url|version`` (or a vendored key)."""
        found = self.value_sets.get(reference)
        if found is not None:
            return found
        key = self._vs_by_url.get(reference.partition("|")[0])
        return self.value_sets.get(key) if key is not None else None

    def known_profiles(self) -> dict[str, str]:
        return {url: self.profiles[keys[0]]["type"] for url, keys in sorted(self.canonical.items())}


_lock = threading.Lock()
_store: Store | None = None


def get_store() -> Store:
    global _store
    if _store is None:
        with _lock:
            if _store is None:
                _store = Store(load(FILE))
    return _store
