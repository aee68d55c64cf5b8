"""The `$operations`: each is declared once in `fhir_operations()` (definition, where it applies, handler,
what a token needs), and the routes, the CapabilityStatement and the bearer-token guard read that registry.
The engine half of each operation is a module under `openpayer.fhir.operations`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from openpayer.api.context import FhirBase
from openpayer.api.negotiation import check_content_type, fhir_response, pretty
from openpayer.api.rendering import read_body
from openpayer.api.search_routes import SearchRoutes, search_params
from openpayer.db import read_connection
from openpayer.fhir.errors import MethodNotAllowed, NotFound
from openpayer.fhir.operations import member_match, validate
from openpayer.fhir.operations.registry import Operation, OperationRegistry, TokenAccess
from openpayer.fhir.search.bundle import render_searchset
from openpayer.fhir.services import parse_json
from openpayer.web.threads import run_blocking

Handler = Callable[[Request, FhirBase, str, str | None], Awaitable[Response]]
EVERYTHING = "http://hl7.org/fhir/OperationDefinition/Patient-everything"


async def run_operation(request: Request, base: FhirBase, rtype: str, rid: str | None, name: str) -> Response:
    """`[type]/$name` (rid None) or `[type]/[id]/$name`, when the registry serves it there; else 404."""
    operation = base.services.operations.get(name)
    if operation is None or not operation.applies(base.kind, rtype, instance=rid is not None):
        where = f"{rtype}/{rid}" if rid else rtype
        raise NotFound(f"The operation ${name} is not supported on {where}")
    response: Response = await operation.handler(request, base, rtype, rid)
    return response


async def _validate(request: Request, base: FhirBase, rtype: str, rid: str | None) -> Response:
    service = base.services.fhir
    profile = request.query_params.get("profile") or None
    if request.method == "POST":
        check_content_type(request.headers)
        resource, given = validate.resource_from_input(parse_json(await read_body(request, base)))
        profile = given or profile
    elif rid is not None:
        stored = await run_blocking(service.read, base.env, rtype, rid)
        resource = stored.json()
    else:
        raise MethodNotAllowed("$validate at type level takes a POSTed resource", allow=("POST",))
    outcome = await run_blocking(validate.validate, service, rtype, resource, rid, profile)
    return fhir_response(outcome, indent=pretty(request.query_params))


async def _member_match(request: Request, base: FhirBase, rtype: str, rid: str | None) -> Response:
    if request.method != "POST":
        raise MethodNotAllowed("$member-match takes a POSTed Parameters resource", allow=("POST",))
    check_content_type(request.headers)
    match = member_match.parse_request(parse_json(await read_body(request, base)))
    services = base.services

    def run() -> dict[str, Any]:
        with read_connection(services.engine) as conn:
            return member_match.member_match(conn, base.env, services.search, services.fhir.repository, match)

    return fhir_response(await run_blocking(run), indent=pretty(request.query_params))


async def _everything(request: Request, base: FhirBase, rtype: str, rid: str | None) -> Response:
    patient_id = rid or ""  # an instance-level operation: the registry routes only Patient/[id]/$everything
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

    return fhir_response(await run_blocking(run), indent=pretty(request.query_params))


def fhir_operations() -> OperationRegistry[Handler]:
    """Every operation this server serves, in the CapabilityStatement's order."""
    both, fhir = frozenset({"fhir", "directory"}), frozenset({"fhir"})
    return OperationRegistry(
        [
            Operation(
                "validate",
                validate.DEFINITION,
                _validate,
                both,
                instance_level=True,
                token=TokenAccess("type", frozenset({"POST"}), "none"),
            ),
            Operation(
                "everything",
                EVERYTHING,
                _everything,
                fhir,
                ("Patient",),
                type_level=False,
                instance_level=True,
                token=TokenAccess("instance", frozenset({"GET", "HEAD", "POST"}), "read"),
            ),
            Operation(
                "member-match",
                member_match.DEFINITION,
                _member_match,
                fhir,
                ("Patient",),
                token=TokenAccess("type", frozenset({"POST"}), "backend-read"),
            ),
        ]
    )
