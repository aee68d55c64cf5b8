"""What members are told about an app: its developer, its attestations, its place in the app gallery.

The answers live with the developer portal (a layer above this one), so the authorization server reads them
through the `AppDirectory` seam; the composition root (`openpayer.bootstrap`) binds the portal's
implementation (`openpayer.portal.app_profiles`). Without it (`NoDirectory`) every app is shown as not having
attested, which is also what members see for an app an operator registered from the command line.

Under the CMS Patient Access rule a plan may not block a member's chosen app for not attesting, but it tells
the member so at the point of authorization; the consent page does that with `AppProfile.attested`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Statement:
    """One attestation in plain language; `concern` marks an answer a member should weigh (data sold...)."""

    text: str
    concern: bool = False


@dataclass(frozen=True, slots=True)
class AppProfile:
    """An app as members see it in one environment (its OAuth client there)."""

    client_id: str
    name: str
    description: str
    developer: str  # the developer organization's legal name
    developer_website: str
    privacy_policy_url: str | None
    has_logo: bool = False
    attested: bool = False  # the developer answered the plan's privacy and security questionnaire
    attested_at: int | None = None
    statements: tuple[Statement, ...] = field(default_factory=tuple)

    @property
    def concerns(self) -> tuple[Statement, ...]:
        return tuple(s for s in self.statements if s.concern)


class AppDirectory(Protocol):
    def profile(self, env: str, client_id: str) -> AppProfile | None:
        """The app behind a client of `env`; None when the portal does not know it (operator-registered)."""
        ...

    def gallery(self, env: str) -> list[AppProfile]:
        """The approved production apps with an active client in `env`, by name."""
        ...

    def logo(self, env: str, client_id: str) -> tuple[bytes, str] | None:
        """The app's logo (bytes, media type) when it has one and is in the gallery or known."""
        ...


class NoDirectory:
    """No portal: nothing is known about any app beyond its OAuth client."""

    def profile(self, env: str, client_id: str) -> AppProfile | None:
        return None

    def gallery(self, env: str) -> list[AppProfile]:
        return []

    def logo(self, env: str, client_id: str) -> tuple[bytes, str] | None:
        return None
