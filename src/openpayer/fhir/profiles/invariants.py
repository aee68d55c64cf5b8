"""The profiles' invariants (``constraint`` with ``severity: error``), evaluated with fhirpathpy.

Only the constraints the guides add are evaluated: R4's own (ele-1, dom-*, ext-1, ...) are left out at
vendoring time, being the structural validator's business. A constraint is skipped, and counted in
`SKIPPED`, when the engine cannot evaluate it here: it resolves references (``resolve()``: references are
not followed), uses a function fhirpathpy lacks, does not parse, or raises on an instance. ``memberOf()``
is provided, against the value sets shipped with the guides.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import fhirpathpy
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

from openpayer.fhir.profiles.store import Expansion, Store

logger = logging.getLogger(__name__)

_MODEL = models["r4"]
# Why constraints were not evaluated: reason -> count (compile time per profile, and run time).
SKIPPED: Counter[str] = Counter()
_skipped_lock = threading.Lock()


class Unevaluable(Exception):
    """An expression the engine cannot evaluate faithfully here (unknown value set, ...)."""


class Invariant:
    __slots__ = ("evaluate", "expression", "human", "key", "path", "severity")

    def __init__(
        self, key: str, severity: str, human: str, expression: str, path: str, evaluate: Callable[..., Any]
    ) -> None:
        self.key = key
        self.severity = severity
        self.human = human
        self.expression = expression
        self.path = path
        self.evaluate = evaluate

    def holds(self, focus: Any, resource: dict[str, Any], root: dict[str, Any], is_root: bool) -> bool | None:
        """True or False; None when it could not be evaluated on this instance (counted in SKIPPED)."""
        node = focus if is_root else ResourceNode.create_node(focus, self.path)
        try:
            result = self.evaluate(node, {"resource": resource, "rootResource": root})
        except Exception as exc:  # fhirpathpy raises plain Exceptions for unsupported constructs
            skip(f"raised {type(exc).__name__}")
            logger.debug("invariant %s raised: %s", self.key, exc)
            return None
        return result != [False]  # empty or non-boolean results do not fail the constraint


def skip(reason: str) -> None:
    with _skipped_lock:
        SKIPPED[reason] += 1


def _member_of(store: Store) -> Callable[..., list[bool]]:
    def member_of(inputs: list[Any], url: Any) -> list[bool]:
        expansion = store.value_set(str(url))
        if expansion is None:
            raise Unevaluable(f"value set {url} is not shipped")
        return [any(in_expansion(item, expansion) for item in inputs)] if inputs else []

    return member_of


def in_expansion(value: Any, expansion: Expansion) -> bool:
    """Whether a code, Coding, CodeableConcept or Quantity is in an expanded value set."""
    if isinstance(value, str):
        return any(codes is None or value in codes for codes in expansion.values())
    if not isinstance(value, dict):
        return False
    codings = value.get("coding") if "coding" in value else [value]
    if not isinstance(codings, list):
        return False
    for coding in codings:
        if not isinstance(coding, dict):
            continue
        system = coding.get("system")
        if not isinstance(system, str) or system not in expansion:
            continue
        codes = expansion[system]
        code = coding.get("code")
        if codes is None or (isinstance(code, str) and code in codes):
            return True
    return False


def compile_invariant(
    key: str, severity: str, human: str, expression: str, path: str, store: Store, stats: dict[str, int]
) -> Invariant | None:
    if severity != "error":
        return None
    if "resolve()" in expression:
        stats["resolve"] = stats.get("resolve", 0) + 1
        return None
    options = {"userInvocationTable": {"memberOf": {"fn": _member_of(store), "arity": {1: ["String"]}}}}
    try:
        evaluate = fhirpathpy.compile(expression, _MODEL, options)
    except Exception as exc:
        stats["unparsable"] = stats.get("unparsable", 0) + 1
        logger.debug("invariant %s does not compile: %s", key, exc)
        return None
    stats["compiled"] = stats.get("compiled", 0) + 1
    return Invariant(key, severity, human, expression, path, evaluate)
