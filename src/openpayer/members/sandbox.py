"""The sandbox's published test member logins, linked to the seed's fixed test members.

These credentials are public on purpose (the README lists them) and exist only in the sandbox: app
developers use them to run the SMART launch against synthetic data. `ensure_sandbox_members` is idempotent;
the seed command calls it after loading the sandbox (or run `openpayer members seed-sandbox`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing this module costs nothing: `openpayer seed` reads the logins before its imports
    from openpayer.members.accounts import MemberStore

# (username, password, Patient id): the Patient ids are the seed's TEST_MEMBERS (openpayer.seed.members).
SANDBOX_MEMBERS: tuple[tuple[str, str, str], ...] = (
    ("sandbox-member-1", "Sandbox-Member-1!", "member-000001"),  # subscriber, TOTP not enrolled
    ("sandbox-member-2", "Sandbox-Member-2!", "member-000002"),
    ("sandbox-member-3", "Sandbox-Member-3!", "member-000003"),
)


def ensure_sandbox_members(
    members: MemberStore, env: str = "sandbox", hashes: Mapping[str, str] | None = None
) -> list[str]:
    """Create the missing sandbox logins; returns the usernames created. Never used for production.

    `hashes`: username -> `passwords.hash_password` of that login's password, made ahead; a login not in
    it is hashed here."""
    from sqlalchemy.exc import IntegrityError

    if env == "production":
        raise ValueError("published test logins are for the sandbox only")
    created = []
    for username, password, patient_id in SANDBOX_MEMBERS:
        try:
            if hashes and username in hashes:
                members.create_hashed(env, username, hashes[username], patient_id)
            else:
                members.create(env, username, password, patient_id)
        except IntegrityError:
            continue  # already there
        created.append(username)
    return created
