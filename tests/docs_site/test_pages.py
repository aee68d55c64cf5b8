"""`/docs/` over HTTP: the guides as pages (one source: docs/*.md), the OpenAPI index, readable 404s, the
security headers, and no page that loads anything from another origin."""

from __future__ import annotations

from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from openpayer.bootstrap import Services
from openpayer.docs_site.markdown import GUIDES, guide_source, render_markdown
from openpayer.oauth.testing import TEST_PASSWORD, SmartApp, two_member_world

REPO = Path(__file__).resolve().parents[2]
DOC_PAGES = [
    "/docs/",
    "/docs/apis",
    "/docs/smart",
    "/docs/api",
    "/docs/console/sandbox/fhir",
    "/docs/console/production/directory",
    "/docs/console/callback",
]


class Assets(HTMLParser):
    """What a page makes the browser fetch or run: script/style/image/frame sources, form targets, inline
    scripts and style attributes; plus the ids of its elements."""

    FETCHED = {
        ("script", "src"),
        ("link", "href"),
        ("img", "src"),
        ("iframe", "src"),
        ("source", "src"),
        ("video", "src"),
        ("audio", "src"),
        ("object", "data"),
        ("embed", "src"),
        ("form", "action"),
    }

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self.ids: set[str] = set()
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.urls += [v for (t, a), v in ((k, values.get(k[1])) for k in self.FETCHED) if t == tag and v]
        if tag == "script" and not values.get("src"):
            self._in_script = True
        if "style" in values or tag == "style":
            self.inline.append(f"<{tag} style>")
        if any(name.startswith("on") for name in values):
            self.inline.append(f"<{tag} on...>")
        if values.get("id"):
            self.ids.add(str(values["id"]))

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append("<script> with inline code")


def parse(html: str) -> Assets:
    assets = Assets()
    assets.feed(html)
    return assets


def assert_same_origin_only(html: str, where: str) -> None:
    assets = parse(html)
    for url in assets.urls:
        parts = urlsplit(url)
        assert not parts.netloc, f"{where} references another origin: {url}"
        assert not parts.scheme, f"{where} references another origin: {url}"
    assert not assets.inline, f"{where} has inline script or style: {assets.inline}"


@pytest.mark.parametrize("path", DOC_PAGES)
def test_docs_pages_load_nothing_from_another_origin_and_carry_the_headers(
    client: TestClient, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert_same_origin_only(response.text, path)
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self';" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"


def test_member_pages_load_nothing_from_another_origin(client: TestClient, services: Services) -> None:
    two_member_world(services, "sandbox")
    redirect = "https://wallet.example/callback"
    client_id, _ = services.auth.clients.register(
        "sandbox", name="Wallet", redirect_uris=[redirect], public=True
    )
    app = SmartApp(client, client_id, redirect)
    sign_in = app.authorize("launch/patient patient/*.rs")
    assert sign_in.status_code == 200
    assert_same_origin_only(sign_in.text, "sign-in page")
    consent = app.sign_in(sign_in.text, "member-a", TEST_PASSWORD)
    assert consent.status_code == 200
    assert 'name="decision"' in consent.text
    assert_same_origin_only(consent.text, "consent page")


def test_static_files_name_no_other_origin() -> None:
    """CSS and scripts served from the package: no `url(http...)`, `@import` or fetch of another origin."""
    static = resources.files("openpayer").joinpath("static")
    files = [p for p in Path(str(static)).rglob("*") if p.suffix in (".css", ".js")]
    assert any(p.name == "console.js" for p in files)
    for path in files:
        text = path.read_text(encoding="utf-8")
        for forbidden in ("http://", "https://", "@import"):
            assert forbidden not in text, path


def test_each_guide_is_the_docs_file_and_every_heading_is_linkable(client: TestClient) -> None:
    for guide in GUIDES:
        source = (REPO / "docs" / guide.source).read_text(encoding="utf-8")
        assert guide_source(guide) == source  # the package serves docs/ itself: one source of truth
        page = client.get(f"/docs/{guide.slug}")
        assert page.status_code == 200
        _, headings = render_markdown(source)
        ids = parse(page.text).ids
        assert [h.anchor for h in headings if h.anchor not in ids] == []
        assert headings[0].level == 1
        assert f'<h1 id="{headings[0].anchor}">{headings[0].text}</h1>' in page.text
        assert page.text.count("<h1") == 1
    index = client.get("/docs/").text
    assert all(f'href="/docs/{g.slug}"' in index for g in GUIDES)


def test_markdown_escapes_html_and_makes_wide_content_scrollable() -> None:
    html, headings = render_markdown(
        "# A & B\n\n<script>alert(1)</script>\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "```sh\ncurl '<x>'\n```\n\n## A & B\n"
    )
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert '<div class="scroll" role="region" aria-label="Table" tabindex="0">' in html
    assert '<pre class="scroll" tabindex="0" role="region" aria-label="Example (sh)">' in html
    assert "curl &#39;&lt;x&gt;&#39;" in html
    assert [(h.level, h.anchor) for h in headings] == [(1, "a-b"), (2, "a-b-2")]


def test_openapi_index_replaces_the_cdn_swagger_page(client: TestClient) -> None:
    page = client.get("/docs/api")
    assert page.status_code == 200
    assert "swagger" not in page.text.lower()
    assert "<code>/{env}/fhir/{rtype}</code>" in page.text
    schema = client.get("/openapi.json").json()
    ids = [op["operationId"] for item in schema["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids)) > 10  # OpenAPI requires unique operationIds
    for item in schema["paths"].values():  # each named by its own method, the same in every process
        assert all(op["operationId"].endswith(f"_{method}") for method, op in item.items())
    # HEAD where a route declares it (a FHIR read), not on each route that answers it as GET (metadata).
    assert "head" in schema["paths"]["/{env}/fhir/{rtype}/{rid}"]
    assert sorted(schema["paths"]["/{env}/fhir/metadata"]) == ["get"]


@pytest.mark.parametrize(
    "path", ["/docs/nothing-here", "/docs/console/staging/fhir", "/docs/console/sandbox/admin"]
)
def test_unknown_docs_paths_answer_a_readable_404_page(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Page not found" in response.text
    assert 'href="/docs/"' in response.text


def test_docs_without_slash_redirects(client: TestClient) -> None:
    response = client.get("/docs", follow_redirects=False)
    assert response.status_code == 308
    assert response.headers["location"] == "/docs/"


def test_console_prefills_a_client_id_only_when_it_is_well_formed(client: TestClient) -> None:
    page = client.get("/docs/console/sandbox/fhir", params={"client_id": "my-app_1.2"})
    assert 'value="my-app_1.2"' in page.text
    hostile = client.get("/docs/console/sandbox/fhir", params={"client_id": '"><script>x</script>'})
    assert hostile.status_code == 200
    assert 'id="client-id" name="client_id" value=""' in hostile.text
    assert 'data-redirect-uri="http://testserver/docs/console/callback"' in page.text
