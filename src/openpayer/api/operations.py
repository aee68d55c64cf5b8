"""HTTP binding of the `$operations` (one engine module per operation under `openpayer.fhir.operations`)."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from openpayer.api.context import FhirBase
from openpayer.api.negotiation import check_content_type, fhir_response, pretty
from openpayer.api.rendering import read_body
from openpayer.api.search_routes import SearchRoutes, search_params
from openpayer.db import read_connection
from openpayer.fhir.errors import MethodNotAllowed, NotFound
from openpayer.fhir.operations import member_match, validate
from openpayer.fhir.search.bundle import render_searchset
from openpayer.fhir.services import parse_json


class OperationRoutes:
    async def run(self, request: Request, base: FhirBase, rtype: str, rid: str | None, name: str) -> Response:
        if name == "validate":
            return await self._validate(request, base, rtype, rid)
        if name == "everything" and rtype == "Patient" and rid is not None and base.kind == "fhir":
            return await self._everything(request, base, rid)
        if name == "member-match" and rtype == "Patient" and rid is None and base.kind == "fhir":
            return await self._member_match(request, base)
        where = f"{rtype}/{rid}" if rid else rtype
        raise NotFound(f"The operation ${name} is not supported on {where}")

    async def _validate(self, request: Request, base: FhirBase, rtype: str, rid: str | None) -> Response:
        service = base.services.fhir
        profile = request.query_params.get("profile") or None
        if request.method == "POST":
            check_content_type(request.headers)
            resource, given = validate.resource_from_input(parse_json(await read_body(request, base)))
            profile = given or profile
        elif rid is not None:
            stored = await run_in_threadpool(service.read, base.env, rtype, rid)
            resource = stored.json()
        else:
            raise MethodNotAllowed("$validate at type level takes a POSTed resource")
        outcome = await run_in_threadpool(validate.validate, service, rtype, resource, rid, profile)
        return fhir_response(outcome, indent=pretty(request.query_params))

    async def _member_match(self, request: Request, base: FhirBase) -> Response:
        if request.method != "POST":
            raise MethodNotAllowed("$member-match takes a POSTed Parameters resource")
        check_content_type(request.headers)
        match = member_match.parse_request(parse_json(await read_body(request, base)))
        services = base.services

        def run() -> dict[str, Any]:
            with read_connection(services.engine) as conn:
                return member_match.member_match(
                    conn, base.env, services.search, services.fhir.repository, match
                )

        return fhir_response(await run_in_threadpool(run), indent=pretty(request.query_params))

    async def _everything(self, request: Request, base: FhirBase, patient_id: str) -> Response:
        params = await search_params(request, base, post=request.method == "POST")
        page_token = next((v for k, v in params if k == "_page_token"), None)
        params = [(k, v) for k, v in params if k != "_page_token"]
        services = base.services
        restriction = SearchRoutes.restriction(request)

        def run() -> bytes:
            with read_connection(services.engine) as conn:
                if not services.fhir.repository.exists(conn, base.env, "Patient", patient_id):
                    raise NotFound(f"Patient/{patient_id} is not known")
                result = services.search.everything(
                    conn,
                    base.env,
                    patient_id,
                    params,
                    base_url=base.url,
                    restriction=restriction,
                    page_token=page_token,
                )
            return render_searchset(result)

        return fhir_response(await run_in_threadpool(run), indent=pretty(request.query_params))
