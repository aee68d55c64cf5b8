"""Search over HTTP (FHIR R4 §3.1.1): GET and POST `_search` give the same results; compartments too."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from openpayer.api.context import FhirBase
from openpayer.api.negotiation import check_content_type, fhir_response, pretty
from openpayer.api.rendering import read_body
from openpayer.db import read_connection
from openpayer.fhir.errors import BadRequest
from openpayer.fhir.search.bundle import render_searchset
from openpayer.web.threads import run_blocking

if TYPE_CHECKING:
    from openpayer.fhir.search.service import Restriction


def handling_is_strict(request: Request) -> bool:
    prefer = request.headers.get("prefer", "")
    for part in prefer.split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "handling":
            return value.strip().strip('"').lower() == "strict"
    return False


async def search_params(request: Request, base: FhirBase, *, post: bool) -> list[tuple[str, str]]:
    params = parse_qsl(request.url.query, keep_blank_values=True)
    if post:
        check_content_type(request.headers, allow_form=True)
        body = await read_body(request, base)
        try:
            params += parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest("The _search body must be application/x-www-form-urlencoded") from exc
    return [(k, v) for k, v in params if k not in ("_format", "_pretty")]


class SearchRoutes:
    """Binds the search engine to HTTP; the restriction hook lets the auth layer narrow every query."""

    @staticmethod
    def restriction(request: Request) -> Restriction | None:
        """The filter an authorization layer put on this request (a patient's compartment), if any."""
        return getattr(request.state, "search_restriction", None)

    async def search(
        self,
        request: Request,
        base: FhirBase,
        rtype: str | None,
        *,
        post: bool = False,
        compartment: tuple[str, str] | None = None,
    ) -> Response:
        params = await search_params(request, base, post=post)
        strict = handling_is_strict(request)
        page_token = None
        remaining = []
        for key, value in params:
            if key == "_page_token":
                page_token = value
            else:
                remaining.append((key, value))
        services = base.services
        restriction = self.restriction(request)

        def run() -> bytes:
            with read_connection(services.engine) as conn:
                if compartment is not None:
                    result = services.search.search_compartment(
                        conn,
                        base.env,
                        compartment[0],
                        compartment[1],
                        rtype or "",
                        remaining,
                        base_url=base.url,
                        strict=strict,
                        restriction=restriction,
                        page_token=page_token,
                    )
                else:
                    result = services.search.search(
                        conn,
                        base.env,
                        rtype,
                        remaining,
                        base_url=base.url,
                        strict=strict,
                        restriction=restriction,
                        allowed_types=base.allowed_types(),
                        page_token=page_token,
                    )
            return render_searchset(result)

        body = await run_blocking(run)
        return fhir_response(body, indent=pretty(request.query_params))
