"""OperationOutcome issues: the one shape every FHIR error, warning and validation finding takes.

FHIR R4 §2.32 (OperationOutcome): `severity` and `code` are required; `expression` carries the
FHIRPath location of the problem (e.g. ``Patient.name[0].given[1]``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["fatal", "error", "warning", "information"]


@dataclass(frozen=True, slots=True)
class Issue:
    severity: Severity
    code: str  # from http://hl7.org/fhir/issue-type: invalid, structure, required, value, not-found, ...
    diagnostics: str
    expression: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            body["expression"] = list(self.expression)
        return body

    @property
    def is_error(self) -> bool:
        return self.severity in ("fatal", "error")


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    items = [issue.to_json() for issue in issues]
    if not items:
        items = [{"severity": "information", "code": "informational", "diagnostics": "All OK"}]
    return {"resourceType": "OperationOutcome", "issue": items}


def error(code: str, diagnostics: str, *expression: str) -> Issue:
    return Issue("error", code, diagnostics, tuple(expression))


def has_errors(issues: Iterable[Issue]) -> bool:
    return any(issue.is_error for issue in issues)
