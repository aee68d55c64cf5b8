"""Which routes of an environment browser apps may call from their own origin (the CORS policy).

- `/{env}/auth/jwks` and every `.well-known` document, and `/{env}/fhir/metadata`: any origin (`*`).
- the JSON endpoints an app calls (`token`, `introspect`, `revoke`, `userinfo`) and `/{env}/fhir`: the
  origins of the environment's registered redirect URIs only.
- the authorize endpoint and its pages: no origin (a browser navigates there, it does not fetch).
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.types import Scope

from openpayer.oauth.clients import ClientStore
from openpayer.web.cors import CorsRule, Policy, header

_PUBLIC_AUTH = {"jwks", ".well-known"}
_CORS_AUTH = {"token", "introspect", "revoke", "userinfo"}


def smart_cors_policy(environments: Collection[str], clients: ClientStore) -> Policy:
    known = frozenset(environments)

    def registered(env: str, scope: Scope) -> str | None:
        origin = header(scope, b"origin")
        return origin if origin and origin in clients.origins(env) else None

    def policy(scope: Scope) -> CorsRule | None:
        parts = scope["path"].strip("/").split("/")
        if len(parts) < 2 or parts[0] not in known:
            return None
        env, area, rest = parts[0], parts[1], parts[2:]
        if area == "auth":
            if rest and rest[0] in _PUBLIC_AUTH:
                return CorsRule("*")
            return CorsRule(registered(env, scope) if rest and rest[0] in _CORS_AUTH else None)
        if rest[:1] == [".well-known"] or (area == "fhir" and rest[:1] == ["metadata"]):
            return CorsRule("*")
        if area == "fhir":
            return CorsRule(registered(env, scope))
        return None

    return policy
