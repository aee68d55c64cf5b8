"""Discovery: SMART configuration (SMART App Launch 2.2 §"Conformance"), OpenID Provider metadata (OIDC
Discovery §3), and the SMART security block of the Patient Access CapabilityStatement.

Everything advertised here works; nothing that does not work is advertised.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from openpayer.fhir.errors import NotFound
from openpayer.oauth.endpoints.token import GRANT_TYPES
from openpayer.oauth.service import Urls

CAPABILITIES = [
    "launch-standalone",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "sso-openid-connect",
    "context-standalone-patient",
    "permission-offline",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
    "authorize-post",
]
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
ASSERTION_ALGS = ["RS384", "ES384"]
SCOPES = [
    "openid",
    "fhirUser",
    "profile",
    "launch/patient",
    "offline_access",
    "online_access",
    "patient/*.read",
    "patient/*.rs",
    "user/*.read",
    "user/*.rs",
    "system/*.read",
    "system/*.rs",
]
SECURITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/restful-security-service"
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def smart_configuration(urls: Urls) -> dict[str, Any]:
    return {
        "issuer": urls.issuer,
        "jwks_uri": urls.auth("jwks"),
        "authorization_endpoint": urls.auth("authorize"),
        "token_endpoint": urls.auth("token"),
        "introspection_endpoint": urls.auth("introspect"),
        "revocation_endpoint": urls.auth("revoke"),
        "userinfo_endpoint": urls.auth("userinfo"),
        "grant_types_supported": list(GRANT_TYPES),
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "capabilities": CAPABILITIES,
    }


def openid_configuration(urls: Urls) -> dict[str, Any]:
    config = smart_configuration(urls)
    del config["capabilities"]
    config.update(
        {
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_modes_supported": ["query"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "fhirUser"],
            "request_parameter_supported": False,
            "claims_parameter_supported": False,
        }
    )
    return config


def _urls(request: Request) -> Urls:
    server = request.app.state.auth
    env = request.path_params["env"]
    if env not in server.settings.environments:
        raise NotFound(f"There is no environment '{env}'")
    urls: Urls = server.urls(request, env)
    return urls


async def smart_configuration_endpoint(request: Request) -> Response:
    return JSONResponse(smart_configuration(_urls(request)))


async def openid_configuration_endpoint(request: Request) -> Response:
    return JSONResponse(openid_configuration(_urls(request)))


def capability_contributor(kind: str, base_url: str, statement: dict[str, Any]) -> None:
    """Add the SMART security service and `oauth-uris` (SMART App Launch 2.2 §"Conformance") to /fhir."""
    if kind != "fhir" or not base_url.endswith("/fhir"):
        return
    origin, _, env = base_url[: -len("/fhir")].rpartition("/")
    urls = Urls(origin, env)
    statement["rest"][0]["security"] = {
        "cors": True,
        "service": [
            {
                "coding": [{"system": SECURITY_SYSTEM, "code": "SMART-on-FHIR"}],
                "text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)",
            }
        ],
        "extension": [
            {
                "url": OAUTH_URIS,
                "extension": [
                    {"url": "authorize", "valueUri": urls.auth("authorize")},
                    {"url": "token", "valueUri": urls.auth("token")},
                    {"url": "revoke", "valueUri": urls.auth("revoke")},
                    {"url": "introspect", "valueUri": urls.auth("introspect")},
                ],
            }
        ],
    }
