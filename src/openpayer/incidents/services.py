"""Incident response's services, built once by the composition root from the portal and the email service."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from openpayer.clock import Clock
from openpayer.config import Settings
from openpayer.email import EmailService
from openpayer.incidents.breach import BreachIntake
from openpayer.incidents.risk import RiskRegister
from openpayer.incidents.service import IncidentService
from openpayer.portal.services import Portal


@dataclass
class Incidents:
    risk: RiskRegister  # the RiskSink detectors flag through; the portal's RiskView
    incidents: IncidentService
    breach: BreachIntake

    @classmethod
    def build(
        cls, settings: Settings, engine: Engine, clock: Clock, email: EmailService, portal: Portal
    ) -> Incidents:
        base = settings.public_base_url
        risk = RiskRegister(engine, clock, email, portal.staff, public_base_url=base)
        incidents = IncidentService(engine, clock, portal.staff, portal.applications, risk)
        secret = settings.breach_webhook_secret
        breach = BreachIntake(
            engine,
            clock,
            secret=secret.get_secret_value() if secret else None,
            tolerance=settings.breach_webhook_tolerance_seconds,
            risk=risk,
            incidents=incidents,
            email=email,
            staff=portal.staff,
            public_base_url=base,
        )
        return cls(risk, incidents, breach)
