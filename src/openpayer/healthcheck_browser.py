"""`openpayer healthcheck --browser`: the same check, with the sign-in and consent pages driven in chromium.

Another server's pages are not OpenPayer's forms: scripts, redirects through an identity provider, a consent
screen or none. So the discovery, PKCE, `state` and `iss` checks, the code exchange and the `/metadata` call
stay the HTTP client's (`openpayer.healthcheck`); only the pages between the authorization request and the
redirect back are driven by Playwright (Debian's chromium, or Playwright's own), with CSS selectors for the
user name, password, submit and consent controls (defaults fit common forms and OpenPayer's own).

The redirect back to the app is intercepted in the browser and never reaches the app. Nothing is kept: the
browser context is closed with its cookies when the check ends.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from openpayer.healthcheck import CheckFailed, Options, Result, begin, finish

DEFAULT_USERNAME = "input[name=username], input[autocomplete=username], input[type=email]"
DEFAULT_PASSWORD = "input[type=password]"  # noqa: S105 - a CSS selector
DEFAULT_SUBMIT = "button[type=submit], input[type=submit]"
DEFAULT_CONSENT = "button[name=decision][value=allow], button:has-text('Allow'), button:has-text('Approve')"
_CHROMIUM = Path("/usr/bin/chromium")


@dataclass
class Browser:
    username_selector: str = DEFAULT_USERNAME
    password_selector: str = DEFAULT_PASSWORD
    submit_selector: str = DEFAULT_SUBMIT
    consent_selector: str = DEFAULT_CONSENT
    executable: Path | None = None  # default: /usr/bin/chromium when present, else Playwright's chromium


def run_browser(options: Options, browser: Browser, transport: httpx.BaseTransport | None = None) -> Result:
    result = Result(ok=False)
    try:
        with httpx.Client(timeout=options.timeout, follow_redirects=False, transport=transport) as http:
            launch = begin(http, options, result)
            location = _drive(launch.authorize_request, options, browser, result)
            finish(http, options, result, launch, location)
    except CheckFailed as failure:
        result.step, result.reason = failure.step, failure.reason
        return result
    result.ok = True
    return result


def _drive(url: str, o: Options, b: Browser, result: Result) -> str:
    """The redirect URI with its query, as the server sent the browser back to the app."""
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise CheckFailed(
            "browser", "Playwright is not installed (pip install 'openpayer[browser]')"
        ) from None
    executable = b.executable or (_CHROMIUM if _CHROMIUM.exists() else None)
    if executable is not None and not shutil.which(str(executable)):
        raise CheckFailed("browser", f"no browser at {executable}")
    timeout_ms = o.timeout * 1000
    back: list[str] = []
    step = "browser"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=str(executable) if executable else None,
                args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
            )
            try:
                context = chromium.new_context()
                page = context.new_page()
                page.set_default_timeout(timeout_ms)

                def intercept(route: Any) -> None:
                    """Navigations are fetched here without following redirects: a redirect to the app
                    is recorded and answered in place, so it never reaches the app."""
                    if not route.request.is_navigation_request():
                        route.continue_()
                        return
                    answer = route.fetch(max_redirects=0)
                    location = answer.headers.get("location", "")
                    if 300 <= answer.status < 400 and location.startswith(o.redirect_uri):
                        back.append(location)
                        route.fulfill(status=200, content_type="text/plain", body="health check: redirected")
                    else:
                        route.fulfill(response=answer)

                context.route("**/*", intercept)
                step = "authorize"
                with result.timer("authorize"):
                    response = page.goto(url)
                if response is not None and response.status >= 400:
                    raise CheckFailed("authorize", f"HTTP {response.status}: {_message(page)}")
                step = "sign-in"
                with result.timer("sign-in"):
                    page.locator(b.username_selector).first.fill(o.username)
                    page.locator(b.password_selector).first.fill(o.password)
                    with page.expect_navigation():
                        page.locator(b.submit_selector).first.click()
                if not back and page.locator(b.password_selector).count():
                    raise CheckFailed(
                        "sign-in", f"the monitoring account was not signed in: {_message(page)}"
                    )
                step = "consent"
                with result.timer("consent"):
                    if not back:
                        with page.expect_navigation():
                            page.locator(b.consent_selector).first.click()
            finally:
                chromium.close()
    except CheckFailed:
        raise
    except PlaywrightError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckFailed(step, first_line[:300]) from None
    if not back:
        raise CheckFailed("consent", "the browser was not sent back to the redirect URI")
    return back[-1]


def _message(page: Any) -> str:
    for selector in ("[role=alert]", ".error", "main p", "h1"):
        found = page.locator(selector)
        if found.count():
            return str(found.first.inner_text()).strip()[:200]
    return "no message on the page"
