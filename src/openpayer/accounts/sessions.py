"""Sign-in sessions and signed hand-offs between the steps of a page flow: one mechanism (`Signer`) for
members, developers and staff.

- Session: an itsdangerous-signed, timed cookie: `op_member` for members (account id, environment, auth
  time; see `openpayer.web.cookies` for its attributes), `op_portal` and `op_admin` for developers and staff
  (`openpayer.portal.web.Area`: account id, sign-in time, second factor passed).
- Hand-offs: a validated request or a pending second factor travels in a signed, timed form field, so
  nothing is trusted from the form that the server did not check when it made it.
"""

from __future__ import annotations

from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

SESSION_COOKIE = "op_member"


class Signer:
    def __init__(self, secret: str) -> None:
        self._secret = secret

    def dumps(self, purpose: str, data: Any) -> str:
        return URLSafeTimedSerializer(self._secret, salt=f"openpayer.{purpose}").dumps(data)

    def loads(self, purpose: str, token: str, max_age: int) -> Any | None:
        try:
            return URLSafeTimedSerializer(self._secret, salt=f"openpayer.{purpose}").loads(
                token, max_age=max_age
            )
        except BadSignature:
            return None
