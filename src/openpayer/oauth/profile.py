"""The OpenID `profile` claims (OIDC Core §5.4) of a member: their name, read from their Patient resource.

The consent page tells the member that `profile` gives the app their name; the id_token and UserInfo then
carry `name`, `given_name` and `family_name` as the plan's record has them (the `official` name first).
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Engine, select

from openpayer.db import read_connection
from openpayer.fhir.storage import codec
from openpayer.fhir.storage.tables import fhir_resource


def profile_claims(engine: Engine, env: str, patient_id: str) -> dict[str, str]:
    with read_connection(engine) as conn:
        content = conn.execute(
            select(fhir_resource.c.content).where(
                fhir_resource.c.env == env,
                fhir_resource.c.type == "Patient",
                fhir_resource.c.id == patient_id,
                fhir_resource.c.deleted.is_(False),
            )
        ).scalar()
    if content is None:
        return {}
    patient: dict[str, Any] = orjson.loads(codec.decode(content))
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
