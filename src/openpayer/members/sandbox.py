"""The sandbox's published test member logins, linked to the seed's fixed test members.

These credentials are public on purpose (the README lists them) and exist only in the sandbox: app
developers use them to run the SMART launch against synthetic data. `ensure_sandbox_members` is idempotent;
the seed command calls it after loading the sandbox (or run `openpayer members seed-sandbox`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing this module costs nothing: `openpayer seed` reads the logins before its imports
    from openpayer.members.accounts import MemberStore

# (username, password, Patient id): the Patient ids are the seed's TEST_MEMBERS (openpayer.seed.members).
SANDBOX_MEMBERS: tuple[tuple[str, str, str], ...] = (
    ("sandbox-member-1", "Sandbox-Member-1!", "member-000001"),  # subscriber, TOTP not enrolled
    ("sandbox-member-2", "Sandbox-Member-2!", "member-000002"),
    ("sandbox-member-3", "Sandbox-Member-3!", "member-000003"),
)


# Each login's argon2id hash (`passwords.hash_password`, RFC 9106's second recommended parameters), made once
# and shipped. The passwords are published, so their hashes reveal nothing, and every fresh sandbox (a first
# `make run`, each `openpayer seed`) no longer spends 0.55 s of CPU making three argon2 hashes again
# (docs/performance.md, Seeding, "Twenty-seventh session"). A hash whose parameters are no longer the
# hasher's (`passwords.needs_rehash`) is made anew; tests/members/test_sandbox.py checks each against its
# password.
SANDBOX_HASHES: dict[str, str] = {
    "sandbox-member-1": (
        "$argon2id$v=19$m=65536,t=3,p=4$xIowDWZsEv8BcINSx7P0aw$sKJKH7bl1Q4ZY11vgYOolCFGqhn/h5JvjM34U2K+JZU"
    ),
    "sandbox-member-2": (
        "$argon2id$v=19$m=65536,t=3,p=4$fG8IU9KzkOHT7Z0f7WMD1A$Jz99lmZKKsHv82i1G5Ez2NrApBI4rBURnFmeVL9R/dU"
    ),
    "sandbox-member-3": (
        "$argon2id$v=19$m=65536,t=3,p=4$mlz4EBjshsMljZqGBGp+Tg$qIhXW1tkleIl31densSO3b5zBQ00tD5YCOxpYy5J+28"
    ),
}


def ensure_sandbox_members(members: MemberStore, env: str = "sandbox") -> list[str]:
    """Create the missing sandbox logins; returns the usernames created. Never used for production."""
    from sqlalchemy.exc import IntegrityError

    from openpayer.accounts.passwords import needs_rehash

    if env == "production":
        raise ValueError("published test logins are for the sandbox only")
    created = []
    for username, password, patient_id in SANDBOX_MEMBERS:
        shipped = SANDBOX_HASHES.get(username)
        try:
            if shipped is not None and not needs_rehash(shipped):
                members.create_hashed(env, username, shipped, patient_id)
            else:
                members.create(env, username, password, patient_id)
        except IntegrityError:
            continue  # already there
        created.append(username)
    return created
