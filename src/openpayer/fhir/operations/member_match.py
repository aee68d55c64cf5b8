"""`Patient/$member-match` (Da Vinci HRex 1.0.0, used by PDex 2.0.0 payer-to-payer exchange).

Input: a Parameters with `MemberPatient` (Patient, 1..1), `CoverageToMatch` (Coverage, 1..1), optionally
`CoverageToLink` (Coverage) and `Consent` (Consent). The match is deterministic:

- demographics: the stored Patient has the MemberPatient's family name and birth date, and its first given
  name and its gender when the MemberPatient gives them (names compared without regard to case);
- coverage: a stored Coverage whose beneficiary is that Patient and which carries one of the
  CoverageToMatch's identifiers (same system and value), or its `subscriberId` (as `subscriberId` or as an
  identifier value). A pure demographic match is not enough (HRex: "a match on member id or subscriber
  id at a minimum").

Output: 200 with a Parameters holding `MemberIdentifier`, the matched member's identifier (the Patient's
identifier of type `MB` from http://terminology.hl7.org/CodeSystem/v2-0203; without one, a `MB`
identifier whose value is the Patient's id on this server). 422 with an OperationOutcome when nothing or
more than one member matches; 400 when the input is not a valid request. Nothing is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection

from openpayer.fhir.capabilities import OperationInfo
from openpayer.fhir.errors import BadRequest, Unprocessable
from openpayer.fhir.storage.repository import ResourceRepository

DEFINITION = "http://hl7.org/fhir/us/davinci-hrex/OperationDefinition/member-match"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
INPUTS = {
    "MemberPatient": "Patient",
    "CoverageToMatch": "Coverage",
    "CoverageToLink": "Coverage",
    "Consent": "Consent",
}
CANDIDATE_LIMIT = 100


class Matcher(Protocol):
    def match_ids(
        self,
        conn: Connection,
        env: str,
        resource_type: str,
        params: Sequence[tuple[str, str]],
        *,
        limit: int = 2,
    ) -> list[str]: ...


def info() -> OperationInfo:
    return OperationInfo("member-match", DEFINITION, ("Patient",))


@dataclass(frozen=True, slots=True)
class MatchRequest:
    family: str
    given: str | None
    birth_date: str
    gender: str | None
    identifiers: tuple[tuple[str | None, str], ...]  # CoverageToMatch.identifier (system, value)
    subscriber_id: str | None


def parse_request(body: Any) -> MatchRequest:
    """The match criteria of a `$member-match` Parameters; BadRequest (400) when it is not one."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise BadRequest("$member-match takes a Parameters resource")
    found: dict[str, dict[str, Any]] = {}
    for parameter in body.get("parameter") or []:
        if not isinstance(parameter, dict):
            raise BadRequest("Parameters.parameter must be a list of objects")
        name = parameter.get("name")
        if name not in INPUTS:
            raise BadRequest(f"$member-match has no input parameter {name!r}")
        resource = parameter.get("resource")
        if not isinstance(resource, dict) or resource.get("resourceType") != INPUTS[name]:
            raise BadRequest(f"The parameter {name} must hold a {INPUTS[name]} resource")
        if name in found:
            raise BadRequest(f"The parameter {name} is given more than once")
        found[name] = resource
    for required in ("MemberPatient", "CoverageToMatch"):
        if required not in found:
            raise BadRequest(f"$member-match needs the parameter {required}")
    patient, coverage = found["MemberPatient"], found["CoverageToMatch"]
    family, given = _name(patient)
    birth_date = patient.get("birthDate")
    if not family or not isinstance(birth_date, str) or not birth_date:
        raise BadRequest("MemberPatient needs a family name and a birthDate to be matched")
    gender = patient.get("gender") if isinstance(patient.get("gender"), str) else None
    identifiers = tuple(
        (i.get("system"), i["value"])
        for i in coverage.get("identifier") or []
        if isinstance(i, dict) and isinstance(i.get("value"), str) and i["value"]
    )
    subscriber = coverage.get("subscriberId")
    subscriber_id = subscriber if isinstance(subscriber, str) and subscriber else None
    return MatchRequest(family, given, birth_date, gender, identifiers, subscriber_id)


def member_match(
    conn: Connection,
    env: str,
    matcher: Matcher,
    repository: ResourceRepository,
    request: MatchRequest,
) -> dict[str, Any]:
    """The output Parameters for a unique match; Unprocessable (422) for none or several."""
    if not request.identifiers and request.subscriber_id is None:
        raise Unprocessable(
            "CoverageToMatch has neither an identifier nor a subscriberId; no member can be matched"
        )
    criteria = [("family", _escape(request.family)), ("birthdate", _escape(request.birth_date))]
    if request.given:
        criteria.append(("given", _escape(request.given)))
    if request.gender:
        criteria.append(("gender", _escape(request.gender)))
    matched: list[dict[str, Any]] = []
    for pid in matcher.match_ids(conn, env, "Patient", criteria, limit=CANDIDATE_LIMIT):
        patient = _read(conn, env, repository, "Patient", pid)
        if patient is None or not _same_person(patient, request):
            continue
        coverage_ids = matcher.match_ids(
            conn, env, "Coverage", [("beneficiary", f"Patient/{pid}")], limit=CANDIDATE_LIMIT
        )
        coverages = (_read(conn, env, repository, "Coverage", cid) for cid in coverage_ids)
        if any(c is not None and _same_coverage(c, request) for c in coverages):
            matched.append(patient)
    if not matched:
        raise Unprocessable("No member matches the MemberPatient and CoverageToMatch")
    if len(matched) > 1:
        raise Unprocessable(f"{len(matched)} members match; the match is not unique")
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": "MemberIdentifier", "valueIdentifier": member_identifier(matched[0])}],
    }


def member_identifier(patient: dict[str, Any]) -> dict[str, Any]:
    for identifier in patient.get("identifier") or []:
        codings = ((identifier.get("type") or {}).get("coding")) or []
        if any(c.get("system") == V2_0203 and c.get("code") == "MB" for c in codings):
            return dict(identifier)
    return {"type": {"coding": [{"system": V2_0203, "code": "MB"}]}, "value": patient["id"]}


def _escape(value: str) -> str:
    """A search value taken literally (FHIR R4 §3.1.1.5.7: `\\`, `,`, `$` and `|` are escaped)."""
    for special in ("\\", ",", "$", "|"):
        value = value.replace(special, "\\" + special)
    return value


def _name(patient: dict[str, Any]) -> tuple[str | None, str | None]:
    for name in patient.get("name") or []:
        if isinstance(name, dict) and isinstance(name.get("family"), str) and name["family"]:
            given = [g for g in name.get("given") or [] if isinstance(g, str) and g]
            return name["family"], (given[0] if given else None)
    return None, None


def _same_person(patient: dict[str, Any], request: MatchRequest) -> bool:
    if patient.get("birthDate") != request.birth_date:
        return False
    if request.gender and patient.get("gender") != request.gender:
        return False
    for name in patient.get("name") or []:
        if str(name.get("family", "")).casefold() != request.family.casefold():
            continue
        given = {str(g).casefold() for g in name.get("given") or []}
        if request.given is None or request.given.casefold() in given:
            return True
    return False


def _same_coverage(coverage: dict[str, Any], request: MatchRequest) -> bool:
    stored = {
        (i.get("system"), i.get("value")) for i in coverage.get("identifier") or [] if isinstance(i, dict)
    }
    if any(pair in stored for pair in request.identifiers):
        return True
    if request.subscriber_id is None:
        return False
    return coverage.get("subscriberId") == request.subscriber_id or request.subscriber_id in {
        value for _, value in stored
    }


def _read(
    conn: Connection, env: str, repository: ResourceRepository, rtype: str, rid: str
) -> dict[str, Any] | None:
    stored = repository.read(conn, env, rtype, rid)
    if stored is None or stored.deleted:
        return None
    return stored.json()
