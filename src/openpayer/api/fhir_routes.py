"""The FHIR RESTful interactions (FHIR R4 §3.1.0) on both bases: `/{env}/fhir` and `/{env}/directory`.

Routes are thin: they negotiate the format, parse headers into typed arguments, call the engine in a
worker thread, and render. Status codes and headers follow the R4 HTTP page interaction by interaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter
from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope

from openpayer.api.context import READS, BaseKind, FhirBase, fhir_base
from openpayer.api.negotiation import check_acceptable, check_content_type, fhir_response, pretty
from openpayer.api.operations import run_operation
from openpayer.api.rendering import (
    history_bundle,
    parse_if_match,
    parse_instant_param,
    read_body,
    render_stored,
    written_response,
)
from openpayer.api.search_routes import SearchRoutes
from openpayer.fhir.errors import BadRequest, MethodNotAllowed, NotFound, UnsupportedMediaType
from openpayer.fhir.outcome import operation_outcome
from openpayer.fhir.services import parse_json, parse_resource
from openpayer.web.threads import run_blocking

T = TypeVar("T")
_SEARCH = SearchRoutes()


async def _run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await run_blocking(fn, *args, **kwargs)


class _BaseRouter(APIRouter):
    """Answers "no match" in one regular expression for a path outside its base. FastAPI (0.165) keeps an
    included router whole and asks each of its routes in turn, so every `/{env}/directory` request was
    first checked against the 20-odd `/{env}/fhir` routes (~5 µs each with FastAPI's bookkeeping)."""

    def __init__(self, kind: str) -> None:
        super().__init__(prefix=f"/{{env}}/{kind}")
        self._base = re.compile(rf"/[^/]+/{re.escape(kind)}(?:/|$)")

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and not self._base.match(get_route_path(scope)):
            return Match.NONE, {}
        return super().matches(scope)


def build_router(kind: BaseKind) -> APIRouter:
    router = _BaseRouter(kind)

    def base(request: Request) -> FhirBase:
        found = fhir_base(request, kind)
        check_acceptable(request.headers, request.query_params)
        return found

    @router.get("/metadata")
    async def metadata(request: Request) -> Response:
        b = base(request)
        statement = await _run(b.services.capability, kind, b.url)
        return fhir_response(statement, indent=pretty(request.query_params))

    @router.api_route("", methods=["GET", "HEAD"])
    @router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def system_search(request: Request) -> Response:
        b = base(request)
        return await _SEARCH.search(request, b, None)

    @router.post("/_search")
    async def system_search_post(request: Request) -> Response:
        b = base(request)
        return await _SEARCH.search(request, b, None, post=True)

    @router.post("")
    @router.post("/", include_in_schema=False)
    async def batch_or_transaction(request: Request) -> Response:
        b = base(request)
        b.check_writable()
        check_content_type(request.headers)
        bundle = parse_json(await read_body(request, b))
        result = await _run(b.services.bundles.process, b.env, bundle, base_url=b.url)
        return fhir_response(result, indent=pretty(request.query_params))

    @router.get("/_history")
    async def system_history(request: Request) -> Response:
        b = base(request)
        return await _history(request, b, None, None)

    @router.api_route("/{rtype}", methods=["GET", "HEAD"])
    async def type_search(request: Request, rtype: str) -> Response:
        b = base(request)
        b.check_type(rtype, type_level=True)
        return await _SEARCH.search(request, b, rtype)

    @router.post("/{rtype}")
    async def create(request: Request, rtype: str) -> Response:
        b = base(request)
        b.check_type(rtype, type_level=True)
        b.check_writable()
        check_content_type(request.headers)
        resource = parse_resource(await read_body(request, b))
        if_none_exist = request.headers.get("if-none-exist")
        outcome = await _run(b.services.fhir.create, b.env, rtype, resource, if_none_exist=if_none_exist)
        return written_response(request, b, outcome, created_status=201)

    @router.put("/{rtype}")
    async def conditional_update(request: Request, rtype: str) -> Response:
        b = base(request)
        b.check_type(rtype, type_level=True)
        b.check_writable()
        check_content_type(request.headers)
        resource = parse_resource(await read_body(request, b))
        query = _criteria(request)
        if_match = parse_if_match(request.headers.get("if-match"))
        outcome = await _run(
            b.services.fhir.conditional_update, b.env, rtype, query, resource, if_match=if_match
        )
        return written_response(request, b, outcome, created_status=201)

    @router.delete("/{rtype}")
    async def conditional_delete(request: Request, rtype: str) -> Response:
        b = base(request)
        b.check_type(rtype, type_level=True)
        b.check_writable()
        outcomes = await _run(b.services.fhir.conditional_delete, b.env, rtype, _criteria(request))
        if not outcomes:
            message = operation_outcome([])
            message["issue"][0]["diagnostics"] = "No resource matched; nothing was deleted"
            return fhir_response(message, 200)
        return Response(status_code=204)

    @router.post("/{rtype}/_search")
    async def type_search_post(request: Request, rtype: str) -> Response:
        b = base(request)
        b.check_type(rtype)
        return await _SEARCH.search(request, b, rtype, post=True)

    @router.get("/{rtype}/_history")
    async def type_history(request: Request, rtype: str) -> Response:
        b = base(request)
        b.check_type(rtype)
        return await _history(request, b, rtype, None)

    @router.api_route("/{rtype}/{rid}", methods=["GET", "HEAD"])
    async def read(request: Request, rtype: str, rid: str) -> Response:
        b = base(request)
        b.check_type(rtype)
        if rid.startswith("$"):
            return await run_operation(request, b, rtype, None, rid[1:])
        stored = await _run(b.services.fhir.read, b.env, rtype, rid)
        return render_stored(request, stored, b, conditional=True)

    @router.post("/{rtype}/{rid}")
    async def type_operation(request: Request, rtype: str, rid: str) -> Response:
        b = base(request)
        b.check_type(rtype)
        if rid.startswith("$"):
            return await run_operation(request, b, rtype, None, rid[1:])
        if b.read_only:
            raise MethodNotAllowed("The provider directory and formulary API is read-only", allow=READS)
        allow = (*READS, "PUT", "PATCH", "DELETE")
        raise MethodNotAllowed(
            "POST to a resource instance is not allowed; use PUT to update it", allow=allow
        )

    @router.put("/{rtype}/{rid}")
    async def update(request: Request, rtype: str, rid: str) -> Response:
        b = base(request)
        b.check_type(rtype)
        b.check_writable()
        check_content_type(request.headers)
        resource = parse_resource(await read_body(request, b))
        if_match = parse_if_match(request.headers.get("if-match"))
        outcome = await _run(b.services.fhir.update, b.env, rtype, rid, resource, if_match=if_match)
        return written_response(request, b, outcome, created_status=201)

    @router.patch("/{rtype}/{rid}")
    async def patch(request: Request, rtype: str, rid: str) -> Response:
        b = base(request)
        b.check_type(rtype)
        b.check_writable()
        if check_content_type(request.headers, allow_patch=True) != "patch":
            raise UnsupportedMediaType(
                "PATCH takes a JSON Patch document: Content-Type application/json-patch+json"
            )
        operations = parse_json(await read_body(request, b))
        if_match = parse_if_match(request.headers.get("if-match"))
        outcome = await _run(b.services.fhir.patch, b.env, rtype, rid, operations, if_match=if_match)
        return written_response(request, b, outcome, created_status=201)

    @router.delete("/{rtype}/{rid}")
    async def delete(request: Request, rtype: str, rid: str) -> Response:
        b = base(request)
        b.check_type(rtype)
        b.check_writable()
        await _run(b.services.fhir.delete, b.env, rtype, rid)
        return Response(status_code=204)

    @router.get("/{rtype}/{rid}/_history")
    async def instance_history(request: Request, rtype: str, rid: str) -> Response:
        b = base(request)
        b.check_type(rtype)
        return await _history(request, b, rtype, rid)

    @router.api_route("/{rtype}/{rid}/_history/{vid}", methods=["GET", "HEAD"])
    async def vread(request: Request, rtype: str, rid: str, vid: str) -> Response:
        b = base(request)
        b.check_type(rtype)
        restriction = SearchRoutes.restriction(request)
        stored = await _run(b.services.fhir.vread, b.env, rtype, rid, vid, restriction)
        return render_stored(request, stored, b, conditional=False)

    @router.api_route("/{rtype}/{rid}/{tail}", methods=["GET", "HEAD", "POST"])
    async def instance_operation_or_compartment(
        request: Request, rtype: str, rid: str, tail: str
    ) -> Response:
        b = base(request)
        b.check_type(rtype)
        if tail.startswith("$"):
            return await run_operation(request, b, rtype, rid, tail[1:])
        if request.method == "POST":
            raise MethodNotAllowed(f"POST is not allowed on {rtype}/{rid}/{tail}", allow=READS)
        b.check_type(tail)
        return await _SEARCH.search(request, b, tail, compartment=(rtype, rid))

    return router


def _criteria(request: Request) -> str:
    query = request.url.query
    if not query:
        raise BadRequest("A conditional interaction needs search criteria in the query string")
    return query


async def _history(request: Request, b: FhirBase, rtype: str | None, rid: str | None) -> Response:
    q = request.query_params
    services = b.services
    count = services.page_size(q.get("_count"))
    since = parse_instant_param(q.get("_since"), "_since")
    at = parse_instant_param(q.get("_at"), "_at", upper=True)
    before = None
    # History under an authorization layer's restriction (a patient's compartment, the granted types),
    # applied in the history SQL to the current rows and to each older version's own content.
    restriction = SearchRoutes.restriction(request)
    scope = [b.env, b.kind, rtype, rid] + ([restriction.key] if restriction is not None else [])
    token = q.get("_page_token")
    if token:
        cursor = services.signer.verify(token)
        if cursor.get("k") != "history" or cursor.get("scope") != scope:
            raise BadRequest("The paging link does not belong to this history")
        before = int(cursor["before"])
        since, at, count = cursor.get("since"), cursor.get("at"), int(cursor["count"])
    if b.kind == "directory" and rtype is None:
        raise NotFound("System history is not served by the directory API; ask per resource type")
    page = await _run(
        services.fhir.history,
        b.env,
        rtype=rtype,
        rid=rid,
        since=since,
        at=at,
        before_seq=before,
        count=count,
        restriction=restriction,
    )
    next_token = None
    if page.resume_before is not None:
        next_token = services.signer.sign(
            {
                "k": "history",
                "scope": scope,
                "before": page.resume_before,
                "since": since,
                "at": at,
                "count": count,
            }
        )
    body = history_bundle(request, b, page, next_token)
    return fhir_response(body, indent=pretty(q))
