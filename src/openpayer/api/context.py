"""Which FHIR base a request is on, and the services it may use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from starlette.requests import Request

from openpayer.api.service import DIRECTORY_TYPES, FhirApi
from openpayer.fhir.errors import MethodNotAllowed, NotFound

READS = ("GET", "HEAD")  # what a read-only address answers (a 405's `Allow`)

BaseKind = Literal["fhir", "directory"]

# The base's own addresses, which the type-level routes (`/{rtype}`) also match for the methods they refuse.
_SYSTEM_ADDRESSES = {"metadata": READS, "_history": READS, "_search": ("POST",)}


@dataclass(frozen=True, slots=True)
class FhirBase:
    env: str
    kind: BaseKind
    url: str  # absolute base URL, e.g. http://127.0.0.1:8000/sandbox/fhir
    services: FhirApi

    @property
    def read_only(self) -> bool:
        return self.kind == "directory"

    def check_type(self, rtype: str, *, type_level: bool = False) -> str:
        if type_level and rtype in _SYSTEM_ADDRESSES:
            allow = _SYSTEM_ADDRESSES[rtype]
            raise MethodNotAllowed(f"{self.url}/{rtype} answers {' and '.join(allow)} only", allow=allow)
        known = self.services.resource_types
        if rtype not in known or (self.kind == "directory" and rtype not in DIRECTORY_TYPES):
            raise NotFound(f"Resource type '{rtype}' is not served at this endpoint")
        return rtype

    def check_writable(self) -> None:
        if self.read_only:
            raise MethodNotAllowed("The provider directory and formulary API is read-only", allow=READS)

    def allowed_types(self) -> frozenset[str] | None:
        return DIRECTORY_TYPES if self.kind == "directory" else None


def origin_of(request: Request, services: FhirApi) -> str:
    configured = services.settings.public_base_url
    if configured:
        return configured.rstrip("/")
    return f"{request.url.scheme}://{request.url.netloc}"


def fhir_base(request: Request, kind: BaseKind) -> FhirBase:
    services: FhirApi = request.app.state.fhir_api
    env = request.path_params.get("env", "")
    if env not in services.settings.environments:
        raise NotFound(f"There is no environment '{env}'")
    return FhirBase(env, kind, f"{origin_of(request, services)}/{env}/{kind}", services)
