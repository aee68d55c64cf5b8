"""The developer docs and the API console in a real browser: accessible, phone-sized, nothing from a CDN,
and "Try it now" working end to end (a directory search; a SMART sign-in, then a Patient Access call)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect
from typer.testing import CliRunner

from openpayer.bootstrap import Services
from openpayer.cli.main import app as cli_app
from openpayer.config import Settings
from openpayer.members.sandbox import SANDBOX_MEMBERS

DOC_PAGES = ["/docs/", "/docs/apis", "/docs/smart", "/docs/api", "/docs/console/sandbox/directory"]


def seed_sandbox(settings: Settings, monkeypatch: pytest.MonkeyPatch, members: int) -> None:
    """`openpayer seed sandbox` into this test's database: the synthetic plan and the published logins."""
    monkeypatch.setenv("OPENPAYER_HOME", str(settings.home))
    monkeypatch.setenv("OPENPAYER_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("OPENPAYER_SECRET_KEY", "test-secret")
    args = ["seed", "sandbox", "--members", str(members), "--workers", "0", "--quiet", "--no-migrate"]
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    assert "Docs, console:   http://127.0.0.1:8000/docs/" in result.output  # printed with the logins


@pytest.mark.parametrize("path", DOC_PAGES)
def test_docs_pages_are_accessible_on_desktop_and_phone(
    server: str,
    page: Any,
    phone_page: Any,
    path: str,
    assert_accessible: Callable[[Any], None],
    assert_fits_width: Callable[[Any], None],
) -> None:
    for browser_page in (page, phone_page):
        response = browser_page.goto(server + path)
        assert response.status == 200
        expect(browser_page.locator("h1")).to_have_count(1)
        assert_accessible(browser_page)
    assert_fits_width(phone_page)


def test_guide_pages_render_tables_code_and_links(server: str, page: Any) -> None:
    page.goto(server + "/docs/smart")
    assert page.title().startswith("Connecting an app")
    assert page.locator("article table").count() >= 3
    assert page.locator("article pre code").count() >= 5
    page.click("nav.toc >> text=Scopes")
    assert page.url.endswith("#scopes")
    page.goto(server + "/docs/")
    page.click("text=The APIs: Patient Access, Provider Directory, Formulary")
    assert page.url == server + "/docs/apis"


def test_directory_console_runs_a_search_at_once(
    server: str,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    phone_page: Any,
    assert_accessible: Callable[[Any], None],
    assert_fits_width: Callable[[Any], None],
) -> None:
    seed_sandbox(settings, monkeypatch, members=3)
    page = phone_page
    page.goto(server + "/docs/console/sandbox/directory")
    page.wait_for_selector("#request-form:not([hidden])")
    assert "resource types" in page.inner_text("#capability-status")
    page.select_option("#type", "InsurancePlan")
    page.select_option("#interaction", "search-type")
    page.select_option("#param-name", "type")
    page.fill("#param-value", "http://terminology.hl7.org/CodeSystem/v3-ActCode|DRUGPOL")
    page.click("#add-param")
    assert "type=http://terminology.hl7.org/CodeSystem/v3-ActCode|DRUGPOL" in page.inner_text("#request-url")
    page.click("#send")
    page.wait_for_selector("#response-entries li")
    assert page.inner_text("#response-status").startswith("200 OK: Bundle with 2 entries of 2")
    entries = page.locator("#response-entries li").all_inner_texts()
    assert sorted(e.split(" ")[0] for e in entries) == [
        "InsurancePlan/formulary-commercial",
        "InsurancePlan/formulary-medicare",
    ]
    assert_accessible(page)
    assert_fits_width(page)

    # Each entry can be read on its own: the form switches to that read and sends it.
    page.click("button[aria-label='Read InsurancePlan/formulary-commercial']")
    expect(page.locator("#response-status")).to_contain_text("200 OK: InsurancePlan/formulary-commercial")
    assert page.input_value("#interaction") == "read"
    assert page.inner_text("#request-url").endswith("/sandbox/directory/InsurancePlan/formulary-commercial")

    # Paging: the Bundle's next link becomes a button that fetches the next page from this origin.
    page.select_option("#type", "Practitioner")
    page.select_option("#param-name", "_count")
    page.fill("#param-value", "3")
    page.click("#add-param")
    page.click("#send")
    expect(page.locator("#response-status")).to_contain_text("200 OK: Bundle with 3 entries")
    first = page.locator("#response-entries li").all_inner_texts()
    page.click("#next-page")
    expect(page.locator("#response-entries li").first).not_to_have_text(first[0])
    second = page.locator("#response-entries li").all_inner_texts()
    assert second
    assert not set(first) & set(second)
    assert all(e.startswith("Practitioner/") for e in first + second)


def test_patient_access_console_signs_a_test_member_in_and_reads_their_records(
    server: str,
    settings: Settings,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    page: Any,
    assert_accessible: Callable[[Any], None],
) -> None:
    seed_sandbox(settings, monkeypatch, members=3)
    username, password, patient = SANDBOX_MEMBERS[0]
    callback = f"{server}/docs/console/callback"
    client_id, _ = services.auth.clients.register(
        "sandbox", name="My console app", redirect_uris=[callback], public=True
    )
    page.goto(f"{server}/docs/console/sandbox/fhir?client_id={client_id}")
    page.wait_for_selector("#request-form:not([hidden])")
    assert page.input_value("#client-id") == client_id
    assert page.inner_text("#redirect-uri") == callback
    assert_accessible(page)

    # Without a token the API answers 401, and the console says what to do.
    page.click("#send")
    expect(page.locator("#response-status")).to_contain_text("401")
    assert "Sign a member in first" in page.inner_text("#response-status")

    page.click("text=Sign in with SMART")
    page.wait_for_selector("input[name=username]")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    with page.expect_navigation():
        page.click("button[name=decision][value=allow]")
    page.wait_for_selector("#request-form:not([hidden])")
    assert page.url == f"{server}/docs/console/sandbox/fhir"  # the code is gone from the address bar
    status = page.inner_text("#token-status")
    assert status.startswith(f"Signed in: patient {patient};"), status

    # The form starts on the member's Patient; then a search of their claims.
    assert page.input_value("#resource-id") == patient
    page.click("#send")
    expect(page.locator("#response-status")).to_contain_text(f"200 OK: Patient/{patient}")
    assert "Maria" in page.inner_text("#response-status")

    # Patient/[id]/$everything, from the operations the CapabilityStatement declares on Patient.
    page.select_option("#interaction", "$everything")
    page.select_option("#param-name", "_type")
    page.fill("#param-value", "Coverage")
    page.click("#add-param")
    assert page.inner_text("#request-url").endswith(
        f"/sandbox/fhir/Patient/{patient}/$everything?_type=Coverage"
    )
    page.click("#send")
    expect(page.locator("#response-status")).to_contain_text("Bundle")
    entries = page.locator("#response-entries li").all_inner_texts()
    assert sorted(e.split(" ")[0] for e in entries) == [
        f"Coverage/coverage-{patient[len('member-') :]}-dental",
        f"Coverage/coverage-{patient[len('member-') :]}-medical",
    ]

    page.select_option("#type", "ExplanationOfBenefit")
    page.select_option("#interaction", "search-type")
    page.select_option("#param-name", "type")
    page.fill("#param-value", "http://terminology.hl7.org/CodeSystem/claim-type|oral")
    page.click("#add-param")
    page.click("#send")
    expect(page.locator("#response-status")).to_contain_text("Bundle")
    entries = page.locator("#response-entries li").all_inner_texts()
    assert len(entries) == 2  # the member's two dental claims
    assert all(e.startswith("ExplanationOfBenefit/eob-000001-") for e in entries)
    assert_accessible(page)


def test_console_callback_without_a_pending_sign_in_explains(server: str, page: Any) -> None:
    page.goto(f"{server}/docs/console/callback?code=forged&state=forged")
    page.wait_for_selector("#token-status.error")
    assert "No sign-in was started" in page.inner_text("#token-status")
