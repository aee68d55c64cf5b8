"""Content negotiation (FHIR R4 §3.1.0.1.10 `_format`, `Accept`, `Content-Type`) and FHIR JSON responses.

Only JSON is served. XML (and anything else) is answered with 406 on the way out and 415 on the way in,
with an OperationOutcome that says so, as the R4 HTTP spec allows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.datastructures import Headers, QueryParams
from starlette.responses import Response

from openpayer.fhir.errors import FHIRError, MethodNotAllowed, NotAcceptable, UnsupportedMediaType

FHIR_JSON = "application/fhir+json"
FHIR_JSON_CHARSET = "application/fhir+json; charset=utf-8"
JSON_PATCH = "application/json-patch+json"
_JSON_TYPES = frozenset({FHIR_JSON, "application/json", "application/json+fhir", "text/json"})
_FORMAT_JSON = frozenset({"json", "application/json", FHIR_JSON, "application/json+fhir", "text/json"})
_WILDCARDS = frozenset({"*/*", "application/*", ""})


def _media_types(header: str) -> list[tuple[str, float]]:
    types = []
    for part in header.split(","):
        pieces = [p.strip() for p in part.split(";")]
        quality = 1.0
        for param in pieces[1:]:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        types.append((pieces[0].lower(), quality))
    return types


def check_acceptable(headers: Headers, query: QueryParams) -> None:
    """Raise 406 unless the client accepts FHIR JSON (via `_format` first, then `Accept`)."""
    fmt = query.get("_format")
    if fmt is not None:
        if fmt.split(";")[0].strip().lower() not in _FORMAT_JSON:
            raise NotAcceptable(f"_format={fmt} is not supported: this server speaks application/fhir+json")
        return
    accept = headers.get("accept")
    if not accept:
        return
    for media, quality in _media_types(accept):
        if quality > 0 and (media in _JSON_TYPES or media in _WILDCARDS or media == "application/fhir+*"):
            return
    raise NotAcceptable(f"Accept: {accept} cannot be served: this server speaks application/fhir+json")


def check_content_type(headers: Headers, *, allow_patch: bool = False, allow_form: bool = False) -> str:
    raw = headers.get("content-type", "")
    media = raw.split(";")[0].strip().lower()
    if media in _JSON_TYPES:
        return "json"
    if allow_patch and media == JSON_PATCH:
        return "patch"
    if allow_form and media == "application/x-www-form-urlencoded":
        return "form"
    if not media:
        raise UnsupportedMediaType("The request has no Content-Type; send application/fhir+json")
    raise UnsupportedMediaType(f"Content-Type {raw} is not supported; send application/fhir+json")


def pretty(query: QueryParams) -> bool:
    return query.get("_pretty", "false").lower() == "true"


def fhir_response(
    body: bytes | dict[str, Any] | None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    *,
    indent: bool = False,
) -> Response:
    if isinstance(body, dict):
        body = orjson.dumps(body, option=orjson.OPT_INDENT_2 if indent else 0)
    elif indent and body:
        body = orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2)
    return Response(
        content=body or b"",
        status_code=status,
        headers=dict(headers or {}),
        media_type=FHIR_JSON_CHARSET if body else None,
    )


def error_response(error: FHIRError, *, indent: bool = False) -> Response:
    headers = {}
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="fhir"'
    if isinstance(error, MethodNotAllowed) and error.allow:
        headers["Allow"] = ", ".join(error.allow)
    return fhir_response(error.outcome(), error.status, headers, indent=indent)
