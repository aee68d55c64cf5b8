"""Typed settings, read from `OPENPAYER_*` environment variables (pydantic-settings)."""

from __future__ import annotations

import ipaddress
import json
import secrets
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPENPAYER_", env_file=None, extra="ignore")

    home: Path = Field(default=Path("var"), description="Data directory: SQLite database, secret key.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; SQLite in `home` when unset.")
    host: str = "127.0.0.1"
    port: int = 8000
    # NoDecode: `sandbox,production` is split by the validator below instead of being parsed as JSON.
    environments: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["sandbox", "production"])
    public_base_url: str | None = Field(
        default=None,
        description="Absolute base URL (scheme://host[:port]) used in links; derived when unset.",
    )
    max_body_bytes: int = 16 * 1024 * 1024
    default_page_size: int = 50
    max_page_size: int = 1000
    include_cap: int = 1000
    secret_key: str | None = Field(
        default=None, description="Signs paging cursors; kept in `home` when unset."
    )
    sql_echo: bool = False
    redis_url: str | None = Field(
        default=None,
        description="Shares sign-in throttling across hosts (redis://host:6379/0); in-process when unset.",
    )
    # SMART/OIDC authorization server (openpayer.oauth); lifetimes in seconds unless named otherwise.
    auth_enforce: bool = Field(
        default=True, description="Require SMART bearer tokens on /{env}/fhir (off only for engine tests)."
    )
    auth_code_lifetime: int = Field(default=60, description="Authorization codes (single use).")
    auth_access_token_lifetime: int = Field(default=3600, le=3600, description="Access tokens (<= 1 h).")
    auth_backend_token_lifetime: int = Field(default=300, le=300, description="client_credentials tokens.")
    auth_refresh_token_days: int = Field(default=90, description="Refresh tokens and offline grants.")
    auth_session_lifetime: int = Field(default=1800, description="Member sign-in session cookie.")
    auth_token_cache_seconds: float = Field(default=5.0, description="In-process cache of token checks.")
    auth_revocation_poll_seconds: float = Field(
        default=0.5,
        gt=0,
        le=1.0,
        description="How often each server reads the revocation counter (a suspension bites within 1 s).",
    )
    auth_key_encryption_key: str | None = Field(
        default=None, description="Encrypts signing keys at rest; derived from secret_key when unset."
    )
    auth_cookie_secure: bool | None = Field(default=None, description="Secure cookies (auto).")
    # Background jobs (openpayer.jobs) and email (openpayer.email).
    jobs_in_serve: bool = Field(default=True, description="Run the job runner inside `openpayer serve`.")
    jobs_poll_seconds: float = Field(default=2.0, gt=0, description="How often a runner looks for due work.")
    jobs_host_name: str | None = Field(default=None, description="This runner's name in run records.")
    jobs_cleanup_every: int = Field(default=3600, ge=1, description="Seconds between OAuth cleanups.")
    jobs_keep_days: int = Field(default=30, ge=1, description="Days finished job runs stay recorded.")
    smtp_url: SecretStr | None = Field(  # secret: it carries the relay's password; kept out of reprs
        default=None,
        description="smtp://user:pass@host:port[?starttls=true] or smtps://...; the file outbox when unset.",
    )
    smtp_timeout: float = Field(default=30.0, gt=0, description="Seconds to wait for the SMTP relay.")
    mail_from: str = Field(default="OpenPayer <openpayer@localhost>", description="The From address.")
    email_max_attempts: int = Field(default=12, ge=1, description="Delivery attempts before a message fails.")
    # Deployment and observability (openpayer.observability, openpayer.web); docs/configuration.md.
    dev: bool = Field(default=False, description="Local development: links may follow the Host header.")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Networks (CIDRs) whose X-Forwarded-For/-Proto are believed."
    )
    log_level: str = Field(default="info", description="debug, info, warning or error.")
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="JSON lines; console (readable) when auto and stderr is a terminal."
    )
    metrics_token: SecretStr | None = Field(default=None, description="Bearer token required on /metrics.")

    # Developer portal (openpayer.portal)
    portal_sandbox_env: str = Field(
        default="sandbox", description="Where applications get self-service subscriptions at once."
    )
    portal_production_env: str = Field(
        default="production", description="Where access needs an approved production request."
    )
    portal_holidays: Annotated[list[date], NoDecode] = Field(
        default_factory=list,
        description="Extra non-business days for review due dates (ISO dates, comma-separated).",
    )
    portal_us_federal_holidays: bool = Field(
        default=True, description="Count US federal holidays (as observed) as non-business days."
    )
    portal_session_idle: int = Field(
        default=1800, description="Portal and console sessions end after this many seconds without a page."
    )
    portal_session_max_age: int = Field(
        default=12 * 3600, description="Portal and console sessions end this long after sign-in."
    )

    # Member pages (/{env}/auth/: consent, connected apps, app gallery, education; docs/smart.md).
    member_plan_name: str = Field(
        default="Your health plan", description="The plan's name in the header of the member pages."
    )
    member_plan_logo: Path | None = Field(
        default=None, description="Logo file (PNG, JPEG or SVG) in that header; a plain one ships."
    )
    member_education_path: Path | None = Field(
        default=None, description="Markdown of the member education page; the shipped text when unset."
    )

    # The inactivity policy (openpayer.policy; docs/policy.md). Days are the plan's local dates.
    policy_window_days: int = Field(default=60, ge=1, description="Days without activity before notice.")
    policy_second_notice_days: int = Field(default=14, ge=1, description="Days from first to second notice.")
    policy_escalation_months: int = Field(
        default=1, ge=1, description="Calendar months from the second notice to mailing other staff."
    )
    policy_removal_days: int = Field(default=7, ge=1, description="Days from escalation to removal.")
    policy_time_zone: str = Field(default="America/Chicago", description="The zone policy dates are in.")

    # Incident response (openpayer.incidents; docs/security.md, "Breach alerts").
    breach_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Shared secret of the breach-alert webhook (HMAC-SHA256); it answers 503 when unset.",
    )
    breach_webhook_tolerance_seconds: int = Field(
        default=300, ge=1, le=3600, description="How far X-Timestamp may be from now (replay window)."
    )

    # Security monitoring (openpayer.security; docs/security.md): detectors' thresholds and mitigation.
    # Windows in seconds. Defaults come from the products that publish them (docs/security.md says which).
    detect_record_events: bool = Field(default=True, description="Record the security event stream.")
    detect_brute_force_failures: int = Field(
        default=10, ge=1, le=100, description="Failures of one account from one address (Auth0: 10)."
    )
    detect_brute_force_window: int = Field(default=900, ge=1, description="Brute-force window (15 min).")
    detect_spray_accounts: int = Field(
        default=15, ge=1, description="More than this many accounts failing from one address (Sentinel)."
    )
    detect_spray_window: int = Field(default=300, ge=1, description="Spraying window (5 min).")
    detect_stuffing_window: int = Field(default=600, ge=1, description="Credential-stuffing window.")
    detect_stuffing_accounts: int = Field(default=20, ge=1, description="Distinct accounts failing.")
    detect_stuffing_addresses: int = Field(default=10, ge=1, description="Distinct addresses failing.")
    detect_stuffing_ratio_factor: float = Field(
        default=3.0, gt=0, description="Failure ratio this many times the environment's baseline."
    )
    detect_stuffing_ratio_floor: float = Field(
        default=0.5, gt=0, le=1, description="...and at least this failure ratio."
    )
    detect_stuffing_baseline_window: int = Field(default=86400, ge=1, description="Baseline: the day before.")
    detect_stuffing_baseline_default: float = Field(
        default=0.2, ge=0, le=1, description="Baseline failure ratio while there are too few sign-ins."
    )
    detect_breached_accounts: int = Field(
        default=10, ge=1, description="Accounts tried with breached-list passwords in the stuffing window."
    )
    detect_breached_defense: bool = Field(
        default=True,
        description="While stuffing goes through an app, refuse breached-list passwords there unchecked.",
    )
    detect_secret_failures: int = Field(
        default=10, ge=1, description="Client authentication failures for one client or from one address."
    )
    detect_secret_window: int = Field(default=900, ge=1, description="Client-secret guessing window.")
    detect_walk_targets: int = Field(
        default=25, ge=1, description="Distinct resources a token was refused (403, restricted 404)."
    )
    detect_walk_window: int = Field(default=300, ge=1, description="Patient-walking window.")
    detect_attribution_share: float = Field(
        default=0.5, gt=0, le=1, description="Share of a detection's events an app must carry to be flagged."
    )
    detect_address_failures: int = Field(
        default=25, ge=1, description="Free sign-in failures per address before growing delays (Elastic: 25)."
    )
    detect_address_window: int = Field(default=900, ge=1, description="Per-address failure window.")
    detect_address_daily: int = Field(
        default=100, ge=1, description="Sign-in failures per address a day before it is blocked (Auth0)."
    )
    detect_token_address_failures: int = Field(
        default=10, ge=1, description="Free client-authentication failures per address before delays."
    )
    detect_max_delay: int = Field(default=900, ge=1, description="The longest growing delay (seconds).")
    detect_memory_keys: int = Field(
        default=100_000, ge=100, description="Keys the in-process counter keeps (hot ones are never dropped)."
    )

    @field_validator("portal_holidays", mode="before")
    @classmethod
    def _split_holidays(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("environments", mode="before")
    @classmethod
    def _split_environments(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().startswith("["):
            return json.loads(value)  # a malformed list fails validation like any bad value
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("smtp_url", mode="before")
    @classmethod
    def _check_smtp_url(cls, value: object) -> object:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(raw, str) and raw and not raw.startswith(("smtp://", "smtps://")):
            raise ValueError("must start with smtp:// or smtps://")
        return value or None

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            for network in value:
                ipaddress.ip_network(str(network).strip(), strict=False)  # ValueError names the bad entry
        return value

    def public_base_url_problem(self, bind_host: str | None = None) -> str | None:
        """Why serving on `bind_host` (default `host`) needs OPENPAYER_PUBLIC_BASE_URL, or None.

        Without it, issuer and links follow each request's Host header, which any client can set: acceptable
        only on a developer's machine, i.e. when the server listens on a loopback address or
        OPENPAYER_DEV=true says so.
        """
        if self.public_base_url or self.dev or is_loopback(bind_host or self.host):
            return None
        return (
            f"OPENPAYER_PUBLIC_BASE_URL must be set when serving on {bind_host or self.host} (not loopback): "
            "the SMART issuer and every link are built from it (e.g. https://api.example-plan.org). "
            "Set OPENPAYER_DEV=true to derive them from the Host header on a development machine."
        )

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite:///{(self.home / 'openpayer.db').resolve()}"

    @cached_property
    def resolved_secret_key(self) -> str:
        """The deployment secret: from settings, else generated once and kept (0600) in the data directory."""
        if self.secret_key:
            return self.secret_key
        path = self.home / "secret.key"
        if path.exists():
            return path.read_text().strip()
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.touch(mode=0o600)
        path.write_text(key)
        return key


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def normalise_database_url(url: str) -> str:
    """Accept the libpq-style `postgresql://` and `postgres://` URLs and pick the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def get_settings() -> Settings:
    return Settings()
