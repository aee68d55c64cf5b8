"""What a `/{env}/fhir/...` request does, as the bearer-token guard sees it (its `Target`).

Reads, searches and history are recognised from the path; `$operations` from the operation registry (each
operation declares there at which level, with which methods and under which check a token may call it).
Anything else (every write, and what no operation declares) is `None`: the guard refuses it with 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from openpayer.fhir.operations.registry import Operation, OperationRegistry


@dataclass(frozen=True, slots=True)
class Target:
    interaction: str  # read, vread, search-type, search-system, history-instance, or an operation's name
    resource_type: str | None = None
    resource_id: str | None = None
    search_type: str | None = None  # the type searched (compartment search: the tail)
    operation: bool = False  # `interaction` names an operation of the registry


def classify(method: str, rest: list[str], operations: OperationRegistry[Any]) -> Target | None:
    """What a `/{env}/fhir/...` request does; None for writes and anything a token may not do here."""
    reading = method in ("GET", "HEAD")
    n = len(rest)
    if n == 0 or rest == ["_search"]:
        return Target("search-system") if reading or n == 1 else None
    rtype = rest[0]
    if n == 1:
        if rtype == "_history":
            return Target("history-system") if reading else None
        if rtype.startswith(("_", "$")):
            return None  # other system interactions and system-level operations
        return Target("search-type", rtype, search_type=rtype) if reading else None
    second = rest[1]
    if n == 2:
        if second == "_search":
            return Target("search-type", rtype, search_type=rtype) if method == "POST" else None
        if second == "_history":
            return Target("history-type", rtype, search_type=rtype) if reading else None
        if second.startswith("$"):
            op = _callable(operations, second[1:], "type", method)
            return Target(op.name, rtype, operation=True) if op is not None else None
        if second.startswith("_") or not reading:
            return None  # other type-level interactions
        return Target("read", rtype, second)
    if n == 3:
        if rest[2].startswith("$"):
            op = _callable(operations, rest[2][1:], "instance", method)
            if op is None or (op.resource_types is not None and rtype not in op.resource_types):
                return None
            return Target(op.name, rtype, second, operation=True)
        if rest[2] == "_history" and reading:
            return Target("history-instance", rtype, second)
        if rest[2].startswith("_") or not reading:
            return None
        return Target("search-compartment", rtype, second, search_type=rest[2])
    if n == 4 and rest[2] == "_history" and reading:
        return Target("vread", rtype, second)
    return None


def _callable(
    operations: OperationRegistry[Any], name: str, level: Literal["type", "instance"], method: str
) -> Operation[Any] | None:
    op = operations.get(name)
    if op is None or op.token is None or op.token.level != level or method not in op.token.methods:
        return None
    return op


def refused(method: str, rest: list[str]) -> Target:
    """What a refused request tried (`refused-delete Observation/x`), for the audit trail."""
    named = [part for part in rest[:2] if part and not part.startswith(("_", "$"))]
    return Target(
        f"refused-{method.lower()}"[:32],
        named[0] if named else None,
        named[1] if len(named) > 1 else None,
    )
