"""Validation of resources against the implementation guides' profiles (CARIN BB, US Core, PDex, ...).

Complements the structural validator (`openpayer.fhir.validation`, base R4): this one checks what the
guides' StructureDefinitions add: cardinality, fixed and pattern values, slicing by discriminator (value,
pattern, type, exists, profile) with closed slicing, required/extensible bindings to the value sets the
packages ship (or R4's), extensions (slices by url, validated against their definitions), narrowed choice
types and the guides' invariants (FHIRPath, with fhirpathpy). References are not resolved, so neither
target profiles nor ``resolve()`` invariants are checked. ``mustSupport`` is not a conformance rule.

Profiles come from ``data/ig-profiles.json.gz`` (``scripts/vendor_ig_profiles.py``) and are compiled on
first use, then cached. A canonical without a version names every shipped version (US Core 3.1.1 and 6.1.0
share their URLs): the resource conforms if it conforms to one of them, else the issues of the version with
the fewest errors are reported. ``url|version`` pins a version.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from openpayer.fhir.outcome import Issue
from openpayer.fhir.profiles.checker import Checker
from openpayer.fhir.profiles.compiler import CompiledProfile, compile_profile
from openpayer.fhir.profiles.invariants import SKIPPED
from openpayer.fhir.profiles.store import CORE_PREFIX, get_store
from openpayer.fhir.validation import known_resource_types
from openpayer.fhir.validation.primitives import show

__all__ = [
    "invariant_stats",
    "known_profiles",
    "profile_errors",
    "validate_against_profiles",
    "warm",
]

logger = logging.getLogger(__name__)

_compiled: dict[str, CompiledProfile] = {}
_compile_stats: dict[str, int] = {}
_lock = threading.Lock()


def known_profiles() -> Mapping[str, str]:
    """Canonical URL -> resource type (``Extension`` for extension definitions) of every shipped profile."""
    return get_store().known_profiles()


def validate_against_profiles(resource: Any, profiles: Sequence[str] | None = None) -> list[Issue]:
    """Issues of `resource` against `profiles` (canonical URLs, optionally ``|version``), or, when None,
    against the profiles its ``meta.profile`` claims, and likewise for its contained resources and, in a
    Bundle, its entries' resources. Unknown profiles give a warning. Never raises."""
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        return []  # the structural validator reports that
    issues: list[Issue] = []
    try:
        _validate(resource, resource["resourceType"], resource, profiles, issues)
    except RecursionError:
        issues.append(Issue("error", "too-costly", "nested too deeply to validate against profiles"))
    except Exception as exc:  # a validator bug must surface as an issue, not as a 500
        logger.exception("profile validation failed")
        issues.append(Issue("error", "exception", f"profile validator failure: {type(exc).__name__}: {exc}"))
    return issues


def profile_errors(resource: Any) -> list[Issue]:
    """The errors of `resource` against the profiles it claims (for ``openpayer load --profile-check``)."""
    return [issue for issue in validate_against_profiles(resource) if issue.is_error]


def warm() -> None:
    """Load and compile every shipped profile (e.g. before forking loader workers)."""
    store = get_store()
    for key in store.profiles:
        compiled_profile(key)


def invariant_stats() -> dict[str, int]:
    """Invariants compiled, and skipped (``resolve``, ``unparsable`` at compile time; ``raised ...``
    on instances), for the profiles compiled so far."""
    with _lock:
        stats = dict(_compile_stats)
    stats.update(SKIPPED)
    return stats


def compiled_profile(key: str) -> CompiledProfile | None:
    found = _compiled.get(key)
    if found is not None:
        return found
    store = get_store()
    if key not in store.profiles:
        return None
    with _lock:
        found = _compiled.get(key)
        if found is None:
            found = compile_profile(key, store, _compile_stats)
            _compiled[key] = found
    return found


def _resolve_extension(canonical: str, package: str) -> CompiledProfile | None:
    """An extension definition: the exact ``url|version`` (as resolved at vendoring), else the version
    the asking package sees (its own or a dependency's); None when it sees none (not checked then)."""
    store = get_store()
    if canonical in store.profiles:
        return compiled_profile(canonical)
    key = store.key_in_context(canonical, package)
    return compiled_profile(key) if key is not None else None


def _conforms(resource: dict[str, Any], canonical: str) -> bool:
    """Profile discriminator: the resource claims the profile, or validates clean against it."""
    url = canonical.partition("|")[0]
    meta = resource.get("meta")
    claimed = meta.get("profile") if isinstance(meta, dict) else None
    if isinstance(claimed, list) and any(isinstance(p, str) and p.partition("|")[0] == url for p in claimed):
        return True
    issues: list[Issue] = []
    _validate(resource, str(resource.get("resourceType")), resource, [canonical], issues, nested=False)
    return not any(issue.is_error for issue in issues)


def _validate(
    resource: dict[str, Any],
    path: str,
    root: dict[str, Any],
    profiles: Sequence[str] | None,
    issues: list[Issue],
    nested: bool = True,
) -> None:
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str):
        return
    declared: list[tuple[str, str]] = []  # (canonical, expression)
    if profiles is None:
        meta = resource.get("meta")
        claimed = meta.get("profile") if isinstance(meta, dict) else None
        if isinstance(claimed, list):
            declared = [(p, f"{path}.meta.profile[{i}]") for i, p in enumerate(claimed) if isinstance(p, str)]
    else:
        declared = [(p, path) for p in profiles]
    store = get_store()
    for canonical, where in declared:
        url = canonical.partition("|")[0]
        if url.startswith(CORE_PREFIX) and url[len(CORE_PREFIX) :] in known_resource_types():
            if url[len(CORE_PREFIX) :] != rtype:
                issues.append(
                    Issue("error", "invalid", f"profile {show(canonical)} is for another type", (where,))
                )
            continue  # the base definition: the structural validator's business
        keys = store.keys_for(canonical)
        if not keys:
            issues.append(
                Issue(
                    "warning",
                    "not-supported",
                    f"profile {show(canonical)} is not known here; the resource was not validated against it",
                    (where,),
                )
            )
            continue
        issues.extend(_against_versions(resource, path, root, keys, where))
    if profiles is not None or not nested:
        return
    contained = resource.get("contained")
    if isinstance(contained, list):
        for i, item in enumerate(contained):
            if isinstance(item, dict):
                _validate(item, f"{path}.contained[{i}]", root, None, issues)
    if rtype == "Bundle" and isinstance(resource.get("entry"), list):
        for i, entry in enumerate(resource["entry"]):
            inner = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(inner, dict):
                _validate(inner, f"{path}.entry[{i}].resource", inner, None, issues)


def _against_versions(
    resource: dict[str, Any], path: str, root: dict[str, Any], keys: list[str], where: str
) -> list[Issue]:
    best: list[Issue] | None = None
    best_errors = 0
    for key in keys:
        compiled = compiled_profile(key)
        if compiled is None:
            continue
        if compiled.type != resource["resourceType"]:
            found = [
                Issue(
                    "error",
                    "invalid",
                    f"{compiled.label}: profiles {compiled.type}, not {resource['resourceType']}",
                    (where,),
                )
            ]
        else:
            found = Checker(compiled, resource, root, _resolve_extension, _conforms).run(path)
        errors = sum(1 for issue in found if issue.is_error)
        if errors == 0:
            return found
        if best is None or errors < best_errors:
            best, best_errors = found, errors
    return best or []
