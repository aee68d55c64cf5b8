"""The composition root: one clock for every domain, moved by tests through `services.clock`."""

from __future__ import annotations

from openpayer.bootstrap import Services
from openpayer.security.audit import AuditEvent


def test_one_clock_stamps_the_fhir_store_the_audit_log_and_the_authorization_server(
    services: Services,
) -> None:
    assert services.auth.clock is services.clock
    first = services.fhir.create("sandbox", "Patient", {"resourceType": "Patient"}).stored
    services.clock.advance(86400)
    later = services.fhir.update("sandbox", "Patient", first.id, {"resourceType": "Patient", "id": first.id})
    assert later.stored.last_updated - first.last_updated >= 86400 * 1_000_000
    services.auth.audit.record("sandbox", AuditEvent.LOGIN_FAILURE, 401)
    (event,) = services.auth.audit.events("sandbox")
    assert event["at"] >= later.stored.last_updated
    assert services.auth.clock.now() >= later.stored.last_updated // 1_000_000
