"""The operation registry: each `$operation` is declared once, with its OperationDefinition, where it applies,
its handler, and what a SMART access token needs to call it.

The CapabilityStatement (`api/service.py`), the routes (`api/operations.py`) and the bearer-token guard's
classification (`oauth/targets.py`) all read it, so adding an operation is adding one `Operation` in
`api/operations.py` (and its engine module here under `fhir/operations/`). The handler's type is the web
layer's: this module stays free of HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from openpayer.fhir.capabilities import OperationInfo

H = TypeVar("H")

TokenCheck = Literal["none", "read", "backend-read"]


@dataclass(frozen=True, slots=True)
class TokenAccess:
    """What a SMART access token needs to call an operation (the guard refuses every other call with 403).

    `check`: `none` — any token (the operation reads and stores nothing, e.g. `$validate`); `read` — the
    token may read the type and the instance is inside its restriction (`$everything`); `backend-read` — a
    backend services token (no member, no patient) granted `system/<type>` read (`$member-match`).
    """

    level: Literal["type", "instance"]
    methods: frozenset[str]
    check: TokenCheck


@dataclass(frozen=True, slots=True)
class Operation(Generic[H]):
    name: str  # without "$"
    definition: str  # canonical URL of the OperationDefinition
    handler: H
    bases: frozenset[str]  # the APIs that serve it: "fhir", "directory"
    resource_types: tuple[str, ...] | None = None  # None: every type the base serves
    type_level: bool = True
    instance_level: bool = False
    token: TokenAccess | None = None  # None: no access token may call it

    def applies(self, kind: str, resource_type: str, *, instance: bool) -> bool:
        """Served on `kind` for `resource_type` at this level (type, or instance when `instance`)."""
        if kind not in self.bases or not (self.instance_level if instance else self.type_level):
            return False
        return self.resource_types is None or resource_type in self.resource_types

    def info(self, base_types: Iterable[str]) -> OperationInfo:
        """What the CapabilityStatement declares: the types it is on (`base_types` when it is on all)."""
        types = self.resource_types if self.resource_types is not None else tuple(sorted(base_types))
        return OperationInfo(self.name, self.definition, types)


class OperationRegistry(Generic[H]):
    def __init__(self, operations: Iterable[Operation[H]]) -> None:
        self._operations = {op.name: op for op in operations}

    def __iter__(self) -> Iterator[Operation[H]]:
        return iter(self._operations.values())

    def get(self, name: str) -> Operation[H] | None:
        return self._operations.get(name)

    def infos(self, kind: str, base_types: Iterable[str]) -> list[OperationInfo]:
        types = tuple(base_types)
        return [op.info(types) for op in self if kind in op.bases]
