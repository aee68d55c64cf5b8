"""The OpenID `profile` claims (OIDC Core §5.4) of a member: their name, read from their Patient resource.

The consent page tells the member that `profile` gives the app their name; the id_token and UserInfo then
carry `name`, `given_name` and `family_name` as the plan's record has them (the `official` name first).
"""

from __future__ import annotations

from typing import Any

import orjson

from openpayer.fhir.errors import FHIRError
from openpayer.fhir.services import FhirService


def profile_claims(fhir: FhirService, env: str, patient_id: str) -> dict[str, str]:
    """The member's name claims; none when their Patient is gone (deleted, or never loaded)."""
    try:
        stored = fhir.read(env, "Patient", patient_id)
    except FHIRError:
        return {}
    patient: dict[str, Any] = orjson.loads(stored.body or b"{}")
    return name_claims(patient.get("name"))


def name_claims(names: Any) -> dict[str, str]:
    if not isinstance(names, list) or not names:
        return {}
    usable = [n for n in names if isinstance(n, dict)]
    chosen = next((n for n in usable if n.get("use") == "official"), usable[0] if usable else None)
    if chosen is None:
        return {}
    given = " ".join(g for g in chosen.get("given") or [] if isinstance(g, str))
    family = chosen.get("family") if isinstance(chosen.get("family"), str) else ""
    text = chosen.get("text") if isinstance(chosen.get("text"), str) else ""
    claims: dict[str, str] = {}
    if given:
        claims["given_name"] = given
    if family:
        claims["family_name"] = family
    full = text or " ".join(part for part in (given, family) if part)
    if full:
        claims["name"] = full
    return claims
