"""The browser-test harness: a live server, Debian's chromium through Playwright, axe and phone width.

Every page test uses these fixtures:

- `server`: the application (`create_app` with the test's `settings` and `services`) served by uvicorn on an
  ephemeral port in a thread; its value is the base URL (`http://127.0.0.1:PORT`). `serve(app)` serves
  another ASGI app the same way.
- `browser`: one chromium per session (`/usr/bin/chromium`; never a downloaded browser).
- `page` (desktop, 1280x900) and `phone_page` (375x812, mobile, touch): a fresh context each. Requests to
  any origin other than this machine's loopback are blocked and fail the test at teardown (no CDN), and so
  do uncaught script errors and Content-Security-Policy violations.
- fixtures returning checks: `assert_accessible(page)`: axe-core (the `axe.min.js` that
  `axe-playwright-python` ships) finds no serious or critical violation; `assert_fits_width(page)`: nothing
  scrolls the page sideways; `check_phone_page(heading)`: both, on `phone_page`, after checking its h1.
- `verified_developer(services, email, password)`: a developer account whose address is verified.

The tests in this folder are marked `browser` and skipped where /usr/bin/chromium is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from tests.live import live_servers

from openpayer.app import create_app
from openpayer.bootstrap import Services
from openpayer.config import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}
SERIOUS = {"serious", "critical"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                item.add_marker(
                    pytest.mark.skip(reason="Debian chromium (/usr/bin/chromium) is not installed")
                )


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Bearer tokens required on /{env}/fhir, as in a deployment (the shared fixture turns them off)."""
    return settings.model_copy(update={"auth_enforce": True})


@pytest.fixture
def serve() -> Iterator[Callable[[Any], str]]:
    """`serve(app)` runs an ASGI app with uvicorn on a free loopback port and returns its base URL."""
    with live_servers(lifespan="off") as start:
        yield start


@pytest.fixture
def server(settings: Settings, services: Services, serve: Callable[[Any], str]) -> str:
    return serve(create_app(settings, services=services))


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@dataclass
class PageWatch:
    """What a page did that a test should never see: requests leaving the machine, script errors."""

    external: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return [f"request to an external origin: {url}" for url in self.external] + self.errors


def _open_page(browser: Any, **context_options: Any) -> Iterator[Any]:
    context = browser.new_context(**context_options)
    watch = PageWatch()

    def route(route: Any) -> None:
        url = route.request.url
        host = urlsplit(url).hostname or ""
        if urlsplit(url).scheme in ("http", "https", "ws", "wss") and host not in LOOPBACK:
            watch.external.append(url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", route)
    page = context.new_page()
    page.on("pageerror", lambda error: watch.errors.append(f"script error: {error}"))
    page.on(
        "console",
        lambda msg: (
            watch.errors.append(f"console: {msg.text}") if "Content Security Policy" in msg.text else None
        ),
    )
    page.watch = watch
    yield page
    context.close()
    problems = watch.problems()
    assert not problems, "\n".join(problems)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    yield from _open_page(browser, viewport=DESKTOP)


@pytest.fixture
def browser_page(page: Any) -> Any:
    """The name the first browser tests used."""
    return page


@pytest.fixture
def phone_page(browser: Any) -> Iterator[Any]:
    yield from _open_page(browser, viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)


@cache
def axe_source() -> str:
    return resources.files("axe_playwright_python").joinpath("axe.min.js").read_text(encoding="utf-8")


def axe_violations(page: Any, impacts: set[str] = SERIOUS) -> list[str]:
    """axe-core's violations of the given impacts on the page as it is now, one line each."""
    page.evaluate(axe_source())  # evaluated by the driver: the page's CSP does not apply
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    lines = []
    for violation in result["violations"]:
        if violation.get("impact") in impacts:
            targets = [" ".join(node["target"]) for node in violation["nodes"][:5]]
            lines.append(f"{violation['impact']}: {violation['id']} ({violation['help']}) at {targets}")
    return lines


def _assert_accessible(page: Any) -> None:
    violations = axe_violations(page)
    assert not violations, f"axe on {page.url}:\n" + "\n".join(violations)


def _assert_fits_width(page: Any) -> None:
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"{page.url} is {widths[0]}px wide in a {widths[1]}px viewport"


@pytest.fixture
def assert_accessible() -> Callable[[Any], None]:
    """`assert_accessible(page)`: axe finds no serious or critical violation on the page as it is now."""
    return _assert_accessible


@pytest.fixture
def assert_fits_width() -> Callable[[Any], None]:
    """`assert_fits_width(page)`: nothing scrolls the page sideways (tables and code scroll in their own
    regions); use it with `phone_page`."""
    return _assert_fits_width


@pytest.fixture
def check_phone_page(phone_page: Any) -> Callable[[str], None]:
    """`check(heading)`: the phone page shows `heading` as its h1, passes axe and fits the phone's width."""

    def check(heading: str) -> None:
        assert phone_page.locator("h1").inner_text() == heading
        _assert_accessible(phone_page)
        _assert_fits_width(phone_page)

    return check


def verified_developer(services: Services, email: str, password: str) -> Any:
    """A developer account with a verified address, as after following the sign-up mail."""
    people = services.portal.people
    person = people.create(email, password)
    people.verify_email(people.verification_token(person))
    return person
