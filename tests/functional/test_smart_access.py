"""What a patient's token reaches on /{env}/fhir: its compartment and nothing else, decided in SQL."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from openpayer.app import create_app
from openpayer.bootstrap import Services
from openpayer.config import Settings
from openpayer.oauth.testing import TEST_PASSWORD, SmartApp
from openpayer.security.audit import AUDIT_MAX_AGE
from openpayer.security.models import audit_event

ENV = "sandbox"
FHIR = f"/{ENV}/fhir"
REDIRECT = "https://app.example.com/callback"
ORIGIN = "https://app.example.com"


@pytest.fixture
def app(client: TestClient, services: Services, world: dict[str, str]) -> SmartApp:
    client_id, _ = services.auth.clients.register(ENV, name="Wallet", redirect_uris=[REDIRECT], public=True)
    return SmartApp(client, client_id, REDIRECT)


def as_a(
    app: SmartApp, scope: str = "launch/patient patient/*.read", untick: tuple[str, ...] = ()
) -> dict[str, str]:
    token = app.launch(scope, "member-a", TEST_PASSWORD, untick)
    return {"Authorization": f"Bearer {token['access_token']}"}


# A SMART v2 granular scope: Observations of the laboratory category only.
LAB_RESULTS_ONLY = (
    "launch/patient patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/"
    "observation-category|laboratory"
)


def ids(bundle: dict[str, object]) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", [])}  # type: ignore[attr-defined]


# ---- no token, bad token -------------------------------------------------------------------------------
def test_fhir_requires_a_bearer_token(client: TestClient, world: dict[str, str]) -> None:
    response = client.get(f"{FHIR}/Patient/{world['a']}")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["resourceType"] == "OperationOutcome"
    bad = client.get(f"{FHIR}/Patient", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]


def test_metadata_and_directory_stay_public(client: TestClient) -> None:
    assert client.get(f"{FHIR}/metadata").status_code == 200
    assert (
        client.get(f"/{ENV}/directory/Organization", headers={"Authorization": "Bearer junk"}).status_code
        == 200
    )


@pytest.mark.parametrize("query", ["access_token={token}", "_count=1&access%5Ftoken={token}"])
def test_tokens_in_query_strings_are_refused(
    client: TestClient, app: SmartApp, world: dict[str, str], query: str
) -> None:
    headers = as_a(app)
    token = headers["Authorization"][7:]
    url = f"{FHIR}/Patient/{world['a']}?{query.format(token=token)}"
    for sent in ({}, headers):  # refused alone, and even beside a valid Authorization header
        response = client.get(url, headers=sent)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert 'error="invalid_request"' in response.headers["www-authenticate"]
        assert response.json()["resourceType"] == "OperationOutcome"
    assert client.get(f"{FHIR}/Patient/{world['a']}", headers=headers).status_code == 200


def test_tokens_do_not_cross_environments(
    client: TestClient, services: Services, app: SmartApp, world: dict[str, str]
) -> None:
    assert "production" in services.settings.environments
    headers = as_a(app)
    assert client.get(f"{FHIR}/Patient/{world['a']}", headers=headers).status_code == 200
    response = client.get(f"/production/fhir/Patient/{world['a']}", headers=headers)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.json()["resourceType"] == "OperationOutcome"
    assert client.get("/production/fhir/Patient", headers=headers).status_code == 401


# ---- reads and searches --------------------------------------------------------------------------------
def test_reads_of_foreign_resources_are_404(client: TestClient, app: SmartApp, world: dict[str, str]) -> None:
    headers = as_a(app)
    for path in (
        f"Patient/{world['b']}",
        f"Observation/{world['b_lab']}",
        f"Coverage/{world['b_cov']}",
        f"Observation/{world['b_lab']}/_history/1",
        f"Observation/{world['b_lab']}/_history",
        f"Patient/{world['b']}/$everything",
        f"Patient/{world['b']}/Observation",
    ):
        assert client.get(f"{FHIR}/{path}", headers=headers).status_code == 404, path
    assert client.get(f"{FHIR}/Observation/{world['a_lab']}", headers=headers).status_code == 200
    assert client.get(f"{FHIR}/Organization/{world['org']}", headers=headers).status_code == 200


def test_searches_see_only_the_compartment(client: TestClient, app: SmartApp, world: dict[str, str]) -> None:
    headers = as_a(app)
    patients = client.get(f"{FHIR}/Patient", headers=headers).json()
    assert ids(patients) == {world["a"]}
    assert patients["total"] == 1
    foreign = client.get(f"{FHIR}/Observation?subject=Patient/{world['b']}", headers=headers).json()
    assert ids(foreign) == set()
    assert foreign["total"] == 0
    by_id = client.get(f"{FHIR}/Observation?_id={world['b_lab']},{world['a_lab']}", headers=headers).json()
    assert ids(by_id) == {world["a_lab"]}
    system = client.get(f"{FHIR}?_type=Observation,Coverage,Patient", headers=headers).json()
    assert ids(system) == {world["a"], world["a_lab"], world["a_vital"], world["a_cov"]}


def test_chains_and_includes_stay_in_the_compartment(
    client: TestClient, app: SmartApp, world: dict[str, str]
) -> None:
    headers = as_a(app)
    chained = client.get(f"{FHIR}/Observation?subject:Patient.family=Bson", headers=headers).json()
    assert ids(chained) == set()
    revinclude = client.get(
        f"{FHIR}/Organization?_id={world['org']}&_revinclude=Coverage:payor", headers=headers
    ).json()
    assert ids(revinclude) == {world["org"], world["a_cov"]}
    include = client.get(f"{FHIR}/Coverage?_include=Coverage:payor", headers=headers).json()
    assert ids(include) == {world["a_cov"], world["org"]}
    has = client.get(f"{FHIR}/Patient?_has:Observation:subject:status=final", headers=headers).json()
    assert ids(has) == {world["a"]}


def test_everything_and_paging_stay_in_the_compartment(
    client: TestClient, app: SmartApp, world: dict[str, str]
) -> None:
    headers = as_a(app)
    everything = client.get(f"{FHIR}/Patient/{world['a']}/$everything", headers=headers).json()
    assert world["b"] not in ids(everything)
    assert world["a_lab"] in ids(everything)
    page = client.get(f"{FHIR}/Observation?_count=1", headers=headers).json()
    assert page["total"] == 2
    following = next(link["url"] for link in page["link"] if link["relation"] == "next")
    second = client.get(following.replace("http://testserver", ""), headers=headers).json()
    assert ids(page) | ids(second) == {world["a_lab"], world["a_vital"]}
    # Another member's token cannot replay the paging link.
    client.cookies.clear()  # end member A's sign-in session
    other = app.launch("launch/patient patient/*.read", "member-b", TEST_PASSWORD)
    assert other["patient"] == world["b"]
    replay = client.get(
        following.replace("http://testserver", ""),
        headers={"Authorization": f"Bearer {other['access_token']}"},
    )
    assert replay.status_code == 400


def versions(bundle: dict[str, Any]) -> list[tuple[str, str]]:
    """(type/id, versionId) of a history Bundle's entries, from fullUrl and ETag (deleted ones too)."""
    return [
        (e["fullUrl"].split("/fhir/", 1)[1], e["response"]["etag"].split('"')[1]) for e in bundle["entry"]
    ]


def edit(services: Services, rtype: str, rid: str) -> None:
    """Write one more version of a stored resource."""
    body = services.fhir.read(ENV, rtype, rid).json()
    services.fhir.update(ENV, rtype, rid, {**body, "meta": {"tag": [{"code": "edited"}]}})


def test_type_history_is_restricted_to_the_compartment(
    client: TestClient, services: Services, app: SmartApp, world: dict[str, str]
) -> None:
    edit(services, "Observation", world["a_lab"])
    edit(services, "Observation", world["b_lab"])
    edit(services, "Observation", world["b_vital"])
    headers = as_a(app)
    response = client.get(f"{FHIR}/Observation/_history", headers=headers)
    assert response.status_code == 200, response.text
    assert sorted(versions(response.json())) == sorted(
        [
            (f"Observation/{world['a_lab']}", "1"),
            (f"Observation/{world['a_lab']}", "2"),
            (f"Observation/{world['a_vital']}", "1"),
        ]
    )
    # The same history unrestricted holds member B's versions: the filter above is what removed them.
    assert len(services.fhir.history(ENV, rtype="Observation").versions) == 7
    patients = versions(client.get(f"{FHIR}/Patient/_history", headers=headers).json())
    assert patients == [(f"Patient/{world['a']}", "1")]


def test_system_history_is_restricted_to_the_compartment_and_granted_types(
    client: TestClient, services: Services, app: SmartApp, world: dict[str, str]
) -> None:
    edit(services, "Coverage", world["b_cov"])
    everything = versions(client.get(f"{FHIR}/_history", headers=as_a(app)).json())
    assert {ref for ref, _ in everything} == {
        f"Patient/{world['a']}",
        f"Observation/{world['a_lab']}",
        f"Observation/{world['a_vital']}",
        f"Coverage/{world['a_cov']}",
        f"Organization/{world['org']}",  # a non-patient type the app needs (Coverage's payor)
    }
    client.cookies.clear()
    narrow = as_a(app, "launch/patient patient/Observation.read")
    observations = versions(client.get(f"{FHIR}/_history", headers=narrow).json())
    assert {ref for ref, _ in observations} == {
        f"Observation/{world['a_lab']}",
        f"Observation/{world['a_vital']}",
    }
    denied = client.get(f"{FHIR}/Coverage/_history", headers=narrow)
    assert denied.status_code == 403
    assert denied.json()["resourceType"] == "OperationOutcome"


def test_history_honours_granular_scopes(client: TestClient, app: SmartApp, world: dict[str, str]) -> None:
    headers = as_a(app, LAB_RESULTS_ONLY)
    history = versions(client.get(f"{FHIR}/Observation/_history", headers=headers).json())
    assert history == [(f"Observation/{world['a_lab']}", "1")]


def test_history_paging_stays_in_the_compartment(
    client: TestClient, services: Services, app: SmartApp, world: dict[str, str]
) -> None:
    for rid in (world["a_lab"], world["b_lab"], world["a_vital"], world["b_vital"]):
        edit(services, "Observation", rid)
    headers = as_a(app)
    seen: list[tuple[str, str]] = []
    url: str | None = f"{FHIR}/Observation/_history?_count=1"
    first_next = None
    while url is not None:
        page = client.get(url, headers=headers).json()
        assert len(page["entry"]) == 1
        seen += versions(page)
        url = next((x["url"] for x in page["link"] if x["relation"] == "next"), None)
        url = url.replace("http://testserver", "") if url else None
        first_next = first_next or url
    mine = {f"Observation/{world['a_lab']}", f"Observation/{world['a_vital']}"}
    assert len(seen) == 4
    assert {ref for ref, _ in seen} == mine
    # Another member's token cannot replay the paging link.
    client.cookies.clear()
    other = app.launch("launch/patient patient/*.read", "member-b", TEST_PASSWORD)
    assert first_next is not None
    replay = client.get(first_next, headers={"Authorization": f"Bearer {other['access_token']}"})
    assert replay.status_code == 400


def test_type_level_validate_is_open_to_tokens_and_stores_nothing(
    client: TestClient, services: Services, app: SmartApp
) -> None:
    headers = {
        **as_a(app, "launch/patient patient/Observation.read"),
        "Content-Type": "application/fhir+json",
    }
    body = {"resourceType": "Patient", "name": [{"family": "Cson"}], "gender": "nonsense"}
    response = client.post(f"{FHIR}/Patient/$validate", json=body, headers=headers)
    assert response.status_code == 200, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert any(issue["severity"] == "error" for issue in outcome["issue"])  # the bad gender was checked
    assert len(services.fhir.history(ENV, rtype="Patient").versions) == 2  # nothing was written
    assert (
        client.post(
            f"{FHIR}/Patient/$validate", content=b"", headers={"Content-Type": "application/fhir+json"}
        ).status_code
        == 401
    )
    other = client.post(f"{FHIR}/Patient/$member-match", json={"resourceType": "Parameters"}, headers=headers)
    assert other.status_code == 403
    assert client.post(f"{FHIR}/Patient/$unknown-operation", json={}, headers=headers).status_code == 403


def test_writes_are_refused(client: TestClient, app: SmartApp, world: dict[str, str]) -> None:
    headers = {**as_a(app), "Content-Type": "application/fhir+json"}
    body = {"resourceType": "Patient", "id": world["a"]}
    assert client.put(f"{FHIR}/Patient/{world['a']}", json=body, headers=headers).status_code == 403
    assert client.post(f"{FHIR}/Patient", json=body, headers=headers).status_code == 403
    assert client.delete(f"{FHIR}/Observation/{world['a_lab']}", headers=headers).status_code == 403


# ---- scopes --------------------------------------------------------------------------------------------
def test_types_not_granted_are_403(client: TestClient, app: SmartApp, world: dict[str, str]) -> None:
    headers = as_a(app, "launch/patient patient/Observation.read")
    assert client.get(f"{FHIR}/Observation", headers=headers).status_code == 200
    denied = client.get(f"{FHIR}/Coverage", headers=headers)
    assert denied.status_code == 403
    assert denied.json()["resourceType"] == "OperationOutcome"
    assert client.get(f"{FHIR}/Patient/{world['a']}", headers=headers).status_code == 403
    system = client.get(f"{FHIR}?_type=Coverage,Observation", headers=headers).json()
    assert ids(system) == {world["a_lab"], world["a_vital"]}


def test_member_can_untick_resource_types(client: TestClient, app: SmartApp) -> None:
    token = app.launch(
        "launch/patient patient/Observation.read patient/Coverage.read",
        "member-a",
        TEST_PASSWORD,
        untick=("patient/Coverage.read",),
    )
    assert token["scope"] == "launch/patient patient/Observation.read"
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert client.get(f"{FHIR}/Coverage", headers=headers).status_code == 403


def test_v2_granular_scope_filters_in_sql(client: TestClient, app: SmartApp, world: dict[str, str]) -> None:
    scope = LAB_RESULTS_ONLY + " patient/Patient.rs"
    token = app.launch(scope, "member-a", TEST_PASSWORD)
    assert token["scope"] == scope  # the granular query is echoed exactly as requested
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert ids(client.get(f"{FHIR}/Observation", headers=headers).json()) == {world["a_lab"]}
    assert client.get(f"{FHIR}/Observation/{world['a_lab']}", headers=headers).status_code == 200
    assert client.get(f"{FHIR}/Observation/{world['a_vital']}", headers=headers).status_code == 404
    revinclude = client.get(f"{FHIR}/Patient?_revinclude=Observation:subject", headers=headers).json()
    assert ids(revinclude) == {world["a"], world["a_lab"]}


def test_user_scopes_mean_the_members_own_data(
    client: TestClient, app: SmartApp, world: dict[str, str]
) -> None:
    headers = as_a(app, "openid fhirUser user/*.rs")
    assert ids(client.get(f"{FHIR}/Patient", headers=headers).json()) == {world["a"]}
    assert client.get(f"{FHIR}/Patient/{world['b']}", headers=headers).status_code == 404


def test_scopes_are_normalised_and_unknown_ones_dropped(app: SmartApp) -> None:
    token = app.launch(
        "launch/patient patient/Observation.cruds patient/Coverage.write patient/Bogus.read "
        "launch system/*.rs patient/Patient.read",
        "member-a",
        TEST_PASSWORD,
    )
    assert token["scope"] == "launch/patient patient/Observation.rs patient/Patient.read"


# ---- CORS and audit ------------------------------------------------------------------------------------
def test_cors_admits_registered_origins_only(
    client: TestClient, app: SmartApp, world: dict[str, str]
) -> None:
    headers = as_a(app)
    ok = client.get(f"{FHIR}/Patient/{world['a']}", headers={**headers, "Origin": ORIGIN})
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    other = client.get(f"{FHIR}/Patient/{world['a']}", headers={**headers, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    preflight = client.options(
        f"/{ENV}/auth/token", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == ORIGIN


def test_access_is_audited_without_tokens(
    client: TestClient, services: Services, app: SmartApp, world: dict[str, str]
) -> None:
    headers = as_a(app)
    client.get(f"{FHIR}/Observation/{world['a_lab']}", headers=headers)
    client.get(f"{FHIR}/Observation/{world['b_lab']}", headers=headers)
    events = [e for e in services.auth.audit.events(ENV) if e["event"] == "fhir:access"]
    assert [(e["resource_id"], e["status"]) for e in events[-2:]] == [
        (world["a_lab"], 200),
        (world["b_lab"], 404),
    ]
    assert all(e["patient_id"] == world["a"] and e["client_id"] == app.client_id for e in events)
    token = headers["Authorization"][7:]
    assert all(token not in str(value) for e in events for value in e.values())


def test_every_kind_of_access_is_audited_with_its_outcome(
    client: TestClient, services: Services, app: SmartApp, world: dict[str, str]
) -> None:
    headers = as_a(app, "launch/patient patient/Observation.read patient/Patient.read")
    a, b = world["a"], world["b"]
    calls = [
        (
            f"Observation?code=http://loinc.org|2345-7&_secret_marker={a}",
            "search-type",
            "Observation",
            None,
            200,
        ),
        (f"Observation/{world['a_lab']}/_history", "history-instance", "Observation", world["a_lab"], 200),
        ("Observation/_history", "history-type", "Observation", None, 200),
        ("_history", "history-system", None, None, 200),
        (f"Patient/{a}/$everything", "everything", "Patient", a, 200),
        (f"Patient/{b}/$everything", "everything", "Patient", b, 404),
        (f"Patient/{a}/Observation", "search-compartment", "Observation", a, 200),
        ("Coverage", "search-type", "Coverage", None, 403),
        (f"Coverage/{world['a_cov']}", "read", "Coverage", world["a_cov"], 403),
        ("Coverage/_history", "history-type", "Coverage", None, 403),
    ]
    for path, *_ in calls:
        client.get(f"{FHIR}/{path}", headers=headers)
    client.delete(f"{FHIR}/Observation/{world['a_lab']}", headers=headers)
    client.post(f"{FHIR}/Observation", headers=headers, json={"resourceType": "Observation"})
    client.post(f"{FHIR}/$export", headers=headers)
    events = [e for e in services.auth.audit.events(ENV) if e["event"] == "fhir:access"]
    got = [(e["interaction"], e["resource_type"], e["resource_id"], e["status"]) for e in events]
    assert got == [(i, t, r, status) for _, i, t, r, status in calls] + [
        ("refused-delete", "Observation", world["a_lab"], 403),
        ("refused-post", "Observation", None, 403),
        ("refused-post", None, None, 403),
    ]
    assert all(e["patient_id"] == a and e["client_id"] == app.client_id for e in events)
    token = headers["Authorization"][7:]
    recorded = " ".join(str(v) for e in events for v in e.values())
    assert token not in recorded
    assert "_secret_marker" not in recorded
    assert "2345-7" not in recorded
    assert "final" not in recorded
    assert "laboratory" not in recorded


def _stored_accesses(services: Services) -> list[tuple[str | None, int]]:
    """FHIR access events as written in the table (not through `AuditLog.events`, which writes first)."""
    query = select(audit_event.c.resource_id, audit_event.c.status).where(
        audit_event.c.event == "fhir:access"
    )
    with services.engine.connect() as conn:
        return [(row.resource_id, row.status) for row in conn.execute(query.order_by(audit_event.c.id))]


def test_audit_events_are_written_while_idle_and_at_shutdown(
    settings: Settings, services: Services, world: dict[str, str]
) -> None:
    client_id, _ = services.auth.clients.register(ENV, name="Wallet", redirect_uris=[REDIRECT], public=True)
    with TestClient(create_app(settings, services=services), base_url="http://testserver") as http:
        headers = as_a(SmartApp(http, client_id, REDIRECT))
        assert http.get(f"{FHIR}/Observation/{world['a_lab']}", headers=headers).status_code == 200
        deadline = time.monotonic() + 4 * AUDIT_MAX_AGE
        while not _stored_accesses(services) and time.monotonic() < deadline:
            time.sleep(0.1)  # no further request: the server writes the buffered event by itself
        assert _stored_accesses(services) == [(world["a_lab"], 200)]
        assert http.get(f"{FHIR}/Observation/{world['b_lab']}", headers=headers).status_code == 404
    # The server stopped right after the last request: its event was written at shutdown.
    assert _stored_accesses(services) == [(world["a_lab"], 200), (world["b_lab"], 404)]


def test_a_resource_moved_to_another_member_shows_each_member_only_their_versions(
    client: TestClient, services: Services, app: SmartApp, world: dict[str, str]
) -> None:
    """Observation b_lab was filed under member B, then corrected to member A: A's app sees the corrected
    version, never the one that was B's, through any history interaction or vread."""
    moved = world["b_lab"]
    body = services.fhir.read(ENV, "Observation", moved).json()
    services.fhir.update(
        ENV, "Observation", moved, {**body, "subject": {"reference": f"Patient/{world['a']}"}}
    )
    headers = as_a(app)
    mine = (f"Observation/{moved}", "2")
    instance = client.get(f"{FHIR}/Observation/{moved}/_history", headers=headers)
    assert instance.status_code == 200, instance.text
    assert versions(instance.json()) == [mine]
    assert mine in versions(client.get(f"{FHIR}/Observation/_history", headers=headers).json())
    assert (f"Observation/{moved}", "1") not in versions(
        client.get(f"{FHIR}/_history", headers=headers).json()
    )
    assert client.get(f"{FHIR}/Observation/{moved}/_history/2", headers=headers).status_code == 200
    older = client.get(f"{FHIR}/Observation/{moved}/_history/1", headers=headers)
    assert older.status_code == 404
    assert older.json()["resourceType"] == "OperationOutcome"
    # Unrestricted, both versions are there: the filter is what hid version 1.
    assert len(services.fhir.history(ENV, rtype="Observation", rid=moved).versions) == 2


def test_a_short_history_page_still_links_to_the_rest(
    client: TestClient, services: Services, app: SmartApp, world: dict[str, str]
) -> None:
    """Older versions that were another member's are skipped without ending the paging early."""
    moved = world["b_lab"]
    body = services.fhir.read(ENV, "Observation", moved).json()
    for n in range(40):  # forty more versions while it was B's: more than a page's reading past
        services.fhir.update(ENV, "Observation", moved, {**body, "meta": {"tag": [{"code": f"b{n}"}]}})
    services.fhir.update(
        ENV, "Observation", moved, {**body, "subject": {"reference": f"Patient/{world['a']}"}}
    )
    headers = as_a(app)
    seen: list[tuple[str, str]] = []
    short_pages = 0
    url: str | None = f"{FHIR}/Observation/_history?_count=1"
    while url is not None:
        page = client.get(url, headers=headers).json()
        seen += versions(page)
        url = next((x["url"] for x in page["link"] if x["relation"] == "next"), None)
        url = url.replace("http://testserver", "") if url else None
        short_pages += url is not None and not page.get("entry")
    assert short_pages >= 1  # a page that read past B's versions without finding one of A's
    assert sorted(seen) == sorted(
        [
            (f"Observation/{moved}", "42"),
            (f"Observation/{world['a_lab']}", "1"),
            (f"Observation/{world['a_vital']}", "1"),
        ]
    )


def test_granular_scopes_show_only_the_current_version_of_their_types(
    client: TestClient, services: Services, app: SmartApp, world: dict[str, str]
) -> None:
    """A scope query (`category=laboratory`) is evaluated on current rows; an older version might not have
    matched it, so under such a scope history and vread show the current version only."""
    edit(services, "Observation", world["a_lab"])
    headers = as_a(app, LAB_RESULTS_ONLY)
    history = versions(client.get(f"{FHIR}/Observation/_history", headers=headers).json())
    assert history == [(f"Observation/{world['a_lab']}", "2")]
    assert client.get(f"{FHIR}/Observation/{world['a_lab']}/_history/1", headers=headers).status_code == 404
    assert client.get(f"{FHIR}/Observation/{world['a_lab']}/_history/2", headers=headers).status_code == 200
    client.cookies.clear()
    broad = as_a(app)  # patient/*.read: the compartment decides, and both versions are A's
    assert client.get(f"{FHIR}/Observation/{world['a_lab']}/_history/1", headers=broad).status_code == 200
