"""Wiring of the background work: the job registry with every real job, the runner, and the email service.

Composition code (it may import every domain), called by the composition root (`bootstrap.py`) with its
engine and clock: which jobs exist and which mail backend the settings choose are decided here.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from openpayer.config import Settings
from openpayer.email import EmailService, FileOutbox, MailBackend, SmtpRelay, parse_smtp_url
from openpayer.jobs import Clock, JobQueue, JobRegistry, JobRunner
from openpayer.jobs.prune import prune_runs
from openpayer.oauth.cleanup import purge_expired


@dataclass
class Background:
    registry: JobRegistry
    queue: JobQueue
    runner: JobRunner
    email: EmailService


def mail_backend(settings: Settings) -> MailBackend:
    if settings.smtp_url:
        return SmtpRelay(parse_smtp_url(settings.smtp_url.get_secret_value()), timeout=settings.smtp_timeout)
    return FileOutbox(settings.home / "outbox")


def build_background(
    settings: Settings, engine: Engine, clock: Clock, *, backend: MailBackend | None = None
) -> Background:
    registry = JobRegistry()
    queue = JobQueue(registry, clock)
    email = EmailService(
        engine,
        queue,
        backend or mail_backend(settings),
        clock,
        mail_from=settings.mail_from,
        max_attempts=settings.email_max_attempts,
    )
    email.register(registry)
    registry.periodic(
        "oauth.cleanup",
        settings.jobs_cleanup_every,
        lambda context: purge_expired(engine, context.now),
        description="Removes expired authorization codes, tokens and assertion ids",
    )
    registry.periodic(
        "jobs.prune",
        86400,
        lambda context: prune_runs(engine, context.now, settings.jobs_keep_days),
        offset=3 * 3600 + 17 * 60,  # 03:17 UTC, away from the top of the hour
        description="Removes run records finished more than OPENPAYER_JOBS_KEEP_DAYS ago",
    )
    runner = JobRunner(engine, registry, clock, host=settings.jobs_host_name)
    return Background(registry, queue, runner, email)
