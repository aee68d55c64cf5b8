"""The pages a person lands on at an address nothing answers, or after a form posted where nothing takes it:
each area's own readable page, accessible at desktop and phone width, with a way back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

NOT_FOUND = [
    ("/nothing-here", "Not Found", "/docs/"),
    ("/sandbox/auth/account/nothing-here", "Page not found", "/sandbox/auth/account"),
    ("/docs/nothing-here", "Page not found", "/docs/"),
    ("/portal/nothing-here", "Page not found", None),
]


@pytest.mark.parametrize(("path", "heading", "way_back"), NOT_FOUND)
@pytest.mark.parametrize("viewport", ["page", "phone_page"])
def test_an_unknown_address_gets_a_readable_page(
    server: str,
    request: pytest.FixtureRequest,
    viewport: str,
    path: str,
    heading: str,
    way_back: str | None,
    assert_accessible: Callable[[Any], None],
    assert_fits_width: Callable[[Any], None],
) -> None:
    page = request.getfixturevalue(viewport)
    response = page.goto(server + path)
    assert response.status == 404
    expect(page.locator("h1")).to_have_text(heading)
    if way_back is not None:
        assert page.locator(f"main a[href='{way_back}']").count() >= 1
    assert_accessible(page)
    assert_fits_width(page)


def test_a_form_posted_to_a_page_that_takes_none_gets_a_readable_page(
    server: str, page: Any, assert_accessible: Callable[[Any], None]
) -> None:
    page.goto(server + "/docs/")
    with page.expect_navigation() as navigation:
        page.evaluate(
            """() => {
                const form = document.createElement("form");
                form.method = "post";
                form.action = "/docs/apis";
                document.body.appendChild(form);
                form.submit();
            }"""
        )
    assert navigation.value.status == 405
    expect(page.locator("h1")).to_have_text("That did not work")
    assert "POST" in page.inner_text("main")
    assert_accessible(page)
