"""Signed paging cursors: plain GET links that any client can follow but no client can forge.

A cursor carries the original query and the keyset position; it is signed with the deployment secret
(HMAC-SHA256, compared in constant time), so a tampered link — a widened query, another environment,
another patient's restriction — fails verification instead of reading beyond the original query.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import orjson

from openpayer.fhir.errors import BadRequest


class CursorSigner:
    def __init__(self, secret: str, purpose: str = "page") -> None:
        self._key = hashlib.sha256(f"{purpose}:{secret}".encode()).digest()

    def sign(self, payload: dict[str, Any]) -> str:
        body = base64.urlsafe_b64encode(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).rstrip(b"=")
        mac = base64.urlsafe_b64encode(hmac.new(self._key, body, hashlib.sha256).digest()[:18])
        return (body + b"." + mac).decode()

    def verify(self, token: str) -> dict[str, Any]:
        try:
            body, mac = token.encode("ascii").split(b".", 1)
            expected = base64.urlsafe_b64encode(hmac.new(self._key, body, hashlib.sha256).digest()[:18])
            if not hmac.compare_digest(mac, expected):
                raise ValueError("bad signature")
            payload = orjson.loads(base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4)))
        except (ValueError, UnicodeError, orjson.JSONDecodeError) as exc:
            raise BadRequest("The paging link is invalid or has been altered") from exc
        if not isinstance(payload, dict):
            raise BadRequest("The paging link is invalid or has been altered")
        return payload
