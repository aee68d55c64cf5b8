"""Request parsing and response rendering shared by the FHIR routes (headers, Prefer, 304s, Bundles)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from openpayer.api.context import FhirBase
from openpayer.api.negotiation import fhir_response, pretty
from openpayer.clock import from_http_date, to_instant
from openpayer.fhir.errors import BadRequest, PayloadTooLarge
from openpayer.fhir.outcome import operation_outcome
from openpayer.fhir.search.history import HistoryPage
from openpayer.fhir.services import Outcome
from openpayer.fhir.storage.repository import StoredVersion
from openpayer.fhir.subsetting import select_elements, summarize

_ETAG = re.compile(r'^\s*(?:W/)?"?(\d{1,9})"?\s*$')
_INSTANT = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


async def read_body(request: Request, base: FhirBase) -> bytes:
    """Read the body, refusing more than the configured limit without buffering it all first."""
    limit = base.services.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest("Content-Length is not a number")
        if int(declared) > limit:
            raise PayloadTooLarge(f"The body is larger than the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_if_match(value: str | None) -> int | None:
    if value is None:
        return None
    match = _ETAG.match(value)
    if not match:
        raise BadRequest(f'If-Match must be a version ETag such as W/"3", not {value!r}')
    return int(match.group(1))


def parse_instant_param(value: str | None, name: str, *, upper: bool = False) -> int | None:
    """Parse `_since`/`_at` (instant or partial dateTime) into microseconds; `upper` takes the range end."""
    if value is None:
        return None
    match = _INSTANT.match(value.strip())
    if not match:
        raise BadRequest(f"{name} must be a FHIR instant such as 2024-01-31T12:00:00Z, not {value!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        start = datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int(float(fraction) * 1_000_000) if fraction else 0,
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise BadRequest(f"{name}: {exc}") from exc
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
        start = start.fromtimestamp(start.timestamp() - offset, tz=UTC)
    micros = int(start.timestamp()) * 1_000_000 + start.microsecond
    if upper and not second:
        # A partial value covers the whole period it names.
        if day is None:
            if month is None:
                end = datetime(int(year) + 1, 1, 1, tzinfo=UTC)
            else:
                m = int(month)
                end = datetime(int(year) + (m == 12), m % 12 + 1, 1, tzinfo=UTC)
            return int(end.timestamp()) * 1_000_000 - 1
        if hour is None:
            return micros + 86_400_000_000 - 1
        return micros + 60_000_000 - 1
    return micros


def parse_http_micros(value: str | None) -> int | None:
    return from_http_date(value) if value else None


def prefer_return(request: Request) -> str:
    prefer = request.headers.get("prefer", "")
    for part in prefer.split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "return":
            return value.strip().strip('"').lower()
    return "representation"


def version_url(base: FhirBase, stored: StoredVersion) -> str:
    return f"{base.url}/{stored.type}/{stored.id}/_history/{stored.version}"


def render_stored(request: Request, stored: StoredVersion, base: FhirBase, *, conditional: bool) -> Response:
    headers = {
        "ETag": stored.etag,
        "Last-Modified": stored.last_modified,
        "Content-Location": version_url(base, stored),
    }
    if conditional:
        inm = request.headers.get("if-none-match")
        if inm is not None:
            wanted = {tag.strip().removeprefix("W/").strip('"') for tag in inm.split(",")}
            if str(stored.version) in wanted or "*" in wanted:
                return Response(status_code=304, headers=headers)
        ims = parse_http_micros(request.headers.get("if-modified-since"))
        if ims is not None and stored.last_updated // 1_000_000 * 1_000_000 <= ims:
            return Response(status_code=304, headers=headers)
    q = request.query_params
    body: bytes | dict[str, Any] | None = stored.body
    summary, elements = q.get("_summary"), q.get("_elements")
    if summary is not None or elements:
        resource = stored.json()
        if summary is not None:
            if summary == "count":
                raise BadRequest("_summary=count applies to searches, not reads")
            resource = summarize(resource, summary)
        if elements:
            resource = select_elements(resource, elements)
        body = resource
    if request.method == "HEAD":
        return Response(status_code=200, headers=headers, media_type="application/fhir+json; charset=utf-8")
    return fhir_response(body, 200, headers, indent=pretty(q))


def written_response(request: Request, base: FhirBase, outcome: Outcome, *, created_status: int) -> Response:
    stored = outcome.stored
    status = created_status if outcome.created else 200
    headers = {"ETag": stored.etag, "Last-Modified": stored.last_modified}
    if outcome.created:
        headers["Location"] = version_url(base, stored)
    else:
        headers["Content-Location"] = version_url(base, stored)
    mode = prefer_return(request)
    if mode == "minimal":
        return Response(status_code=status, headers=headers)
    if mode == "operationoutcome":
        outcome_body = operation_outcome([])
        verb = "created" if outcome.created else ("updated" if outcome.changed else "matched")
        outcome_body["issue"][0]["diagnostics"] = (
            f"{stored.type}/{stored.id} {verb} (version {stored.version})"
        )
        return fhir_response(outcome_body, status, headers, indent=pretty(request.query_params))
    return fhir_response(stored.body, status, headers, indent=pretty(request.query_params))


def public_url(request: Request, base: FhirBase, query: str | None = None) -> str:
    """The request's URL as the client should see it (honouring a configured public base URL)."""
    origin = base.url.rsplit(f"/{base.env}/{base.kind}", 1)[0]
    query = request.url.query if query is None else query
    return f"{origin}{request.url.path}" + (f"?{query}" if query else "")


_HISTORY_STATUS = {"POST": "201 Created", "DELETE": "204 No Content"}


def history_bundle(request: Request, base: FhirBase, page: HistoryPage, next_token: str | None) -> bytes:
    """Render a `history` Bundle, splicing stored bytes in without re-parsing them."""
    links = [{"relation": "self", "url": public_url(request, base)}]
    if next_token is not None:
        links.append({"relation": "next", "url": public_url(request, base, f"_page_token={next_token}")})
    head = orjson.dumps({"resourceType": "Bundle", "type": "history", "link": links})[:-1]
    parts: list[bytes] = []
    for version in page.versions:
        url = version.type if version.method == "POST" else f"{version.type}/{version.id}"
        entry = {
            "fullUrl": f"{base.url}/{version.type}/{version.id}",
            "request": {"method": version.method, "url": url},
            "response": {
                "status": _HISTORY_STATUS.get(version.method, "200 OK"),
                "etag": version.etag,
                "lastModified": to_instant(version.last_updated),
            },
        }
        encoded = orjson.dumps(entry)
        if version.body is not None:
            encoded = encoded[:-1] + b',"resource":' + version.body + b"}"
        parts.append(encoded)
    return head + b',"entry":[' + b",".join(parts) + b"]}"
