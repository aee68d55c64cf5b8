"""`openpayer healthcheck`: a synthetic SMART sign-in and a /metadata call, once or on a schedule."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Annotated

import typer
from joserfc.jwk import KeySet

from openpayer.healthcheck import DEFAULT_SCOPE, Options, run
from openpayer.healthcheck_browser import (
    DEFAULT_CONSENT,
    DEFAULT_PASSWORD,
    DEFAULT_SUBMIT,
    DEFAULT_USERNAME,
    Browser,
    run_browser,
)

_EVERY = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_every(value: str) -> int:
    found = _EVERY.match(value.strip())
    if not found or int(found.group(1)) == 0:
        raise typer.BadParameter("use a number and a unit: 30d, 12h, 90m or 45s")
    return int(found.group(1)) * _UNITS[found.group(2)]


def healthcheck(
    fhir_base: Annotated[
        str, typer.Argument(help="The FHIR base URL, e.g. https://payer.example/sandbox/fhir")
    ],
    client_id: Annotated[str, typer.Option("--client-id", help="The app's registered client id.")],
    redirect_uri: Annotated[
        str, typer.Option("--redirect-uri", help="One of the app's registered redirect URIs.")
    ],
    username: Annotated[str, typer.Option("--username", help="The monitoring account's user name.")],
    password_env: Annotated[
        str, typer.Option("--password-env", help="The environment variable holding its password.")
    ] = "OPENPAYER_HEALTHCHECK_PASSWORD",  # noqa: S107 - a variable's name, not a password
    client_secret_env: Annotated[
        str,
        typer.Option(
            "--client-secret-env", help="The variable holding the client secret (confidential apps)."
        ),
    ] = "OPENPAYER_HEALTHCHECK_CLIENT_SECRET",  # noqa: S107 - a variable name, not a secret
    private_key: Annotated[
        Path | None,
        typer.Option("--private-key", help="A JWKS file with the app's private key (private_key_jwt)."),
    ] = None,
    scope: Annotated[
        str, typer.Option("--scope", help="The scopes to ask for (the minimum by default).")
    ] = DEFAULT_SCOPE,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a line.")] = False,
    every: Annotated[str | None, typer.Option("--every", help="Run again after this long, e.g. 30d.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for each answer.")] = 15.0,
    browser: Annotated[
        bool, typer.Option("--browser", help="Drive the sign-in and consent pages in chromium (Playwright).")
    ] = False,
    username_selector: Annotated[
        str, typer.Option("--username-selector", help="--browser: CSS selector of the user name field.")
    ] = DEFAULT_USERNAME,
    password_selector: Annotated[
        str, typer.Option("--password-selector", help="--browser: CSS selector of the password field.")
    ] = DEFAULT_PASSWORD,
    submit_selector: Annotated[
        str, typer.Option("--submit-selector", help="--browser: CSS selector of the sign-in button.")
    ] = DEFAULT_SUBMIT,
    consent_selector: Annotated[
        str, typer.Option("--consent-selector", help="--browser: CSS selector of the allow button.")
    ] = DEFAULT_CONSENT,
    chromium: Annotated[
        Path | None,
        typer.Option("--chromium", help="--browser: the chromium to run (/usr/bin/chromium)."),
    ] = None,
) -> None:
    """Complete the SMART standalone launch as the monitoring account and call /metadata with the token.

    Exit status: 0 the check passed, 1 a step failed (printed with its reason), 2 bad usage."""
    if not fhir_base.startswith(("https://", "http://")):
        raise typer.BadParameter("the FHIR base URL starts with https:// (or http:// for a local server)")
    password = os.environ.get(password_env)
    if not password:
        raise typer.BadParameter(f"set the monitoring account's password in ${password_env}")
    keys = None
    if private_key is not None:
        try:
            keys = KeySet.import_key_set(json.loads(private_key.read_text()))
        except (OSError, ValueError) as error:
            raise typer.BadParameter(
                f"cannot read a JWKS from {private_key}: {type(error).__name__}"
            ) from None
    secret = os.environ.get(client_secret_env) if keys is None else None
    interval = parse_every(every) if every is not None else None
    options = Options(
        fhir_base=fhir_base,
        client_id=client_id,
        redirect_uri=redirect_uri,
        username=username,
        password=password,
        scope=scope,
        client_secret=secret or None,
        private_key=keys,
        timeout=timeout,
    )
    driver = Browser(username_selector, password_selector, submit_selector, consent_selector, chromium)
    while True:
        result = run_browser(options, driver) if browser else run(options)
        typer.echo(json.dumps(result.as_json()) if as_json else result.line())
        if interval is None:
            raise typer.Exit(0 if result.ok else 1)
        time.sleep(interval)
