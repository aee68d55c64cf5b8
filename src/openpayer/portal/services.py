"""The portal's services, built once from settings and the authorization server's client store and clock."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from openpayer.accounts.events import SignInEvents
from openpayer.accounts.people import PeopleService
from openpayer.accounts.people_signin import PeopleSignIn
from openpayer.accounts.recovery import Recovery
from openpayer.clock import Clock
from openpayer.config import Settings
from openpayer.oauth.clients import ClientStore
from openpayer.oauth.tokens import TokenStore
from openpayer.portal.applications import ApplicationService
from openpayer.portal.audit_views import AuditViews
from openpayer.portal.business_days import BusinessCalendar
from openpayer.portal.directory import Directory
from openpayer.portal.interfaces import ActivityReader, Mailer, RiskView
from openpayer.portal.monitoring import MemberAccounts, MonitoringService, SyntheticPatients
from openpayer.portal.notifications import Notifier
from openpayer.portal.organizations import OrganizationService
from openpayer.portal.oversight import Oversight
from openpayer.portal.questionnaire import QuestionnaireService, TermsService
from openpayer.portal.reports import UsageReports
from openpayer.portal.reviews import ReviewService
from openpayer.portal.staff import StaffService
from openpayer.portal.staff_actions import StaffActions
from openpayer.security.audit_search import AuditSearch
from openpayer.security.monitor import SecurityMonitor
from openpayer.security.sealing import Sealer


@dataclass
class Portal:
    organizations: OrganizationService
    applications: ApplicationService
    questionnaire: QuestionnaireService
    terms: TermsService
    reviews: ReviewService
    staff: StaffService
    calendar: BusinessCalendar
    people: PeopleService
    notifier: Notifier
    monitoring: MonitoringService
    signin: PeopleSignIn  # password and second factor for /portal/ and /admin/ (openpayer.accounts)
    oversight: Oversight  # what staff read in the console
    actions: StaffActions  # staff actions beyond suspend/restore/rotate (applications.py)
    reports: UsageReports  # the CMS usage report
    audits: AuditViews  # the access audit and the staff trail, searched and exported
    recovery: Recovery  # password reset and new verification links (openpayer.accounts)
    directory: Directory  # the removal steps, shared by the console and the inactivity policy
    risk: RiskView | None = None  # at-risk state on the application page (set by the composition root)

    @classmethod
    def build(
        cls,
        settings: Settings,
        engine: Engine,
        clock: Clock,
        clients: ClientStore,
        sealer: Sealer,
        mailer: Mailer,
        security: SecurityMonitor,
        events: SignInEvents,
        *,
        members: MemberAccounts,
        patients: SyntheticPatients,
        activity: ActivityReader,
        access: AuditSearch,
        tokens: TokenStore,
    ) -> Portal:
        """`mailer` records and queues mail (the email domain's `EmailService`); `security` (throttle and
        event stream) and `events` are the members' sign-in's, so one monitor sees every sign-in; `members`
        and `patients` create monitoring accounts (the members domain's store, a FHIR Patient create);
        `activity` is the authorization server's record of client activity, `access` the access audit's
        reader (the console's search and the CMS usage report), `tokens` the authorization server's token
        store (removing an organization revokes its clients' tokens)."""
        calendar = BusinessCalendar.of(
            settings.portal_holidays, federal_holidays=settings.portal_us_federal_holidays
        )
        staff = StaffService(engine, clock)
        organizations = OrganizationService(engine, clock)
        applications = ApplicationService(
            engine, clock, clients, organizations, staff, sandbox_env=settings.portal_sandbox_env
        )
        questionnaire = QuestionnaireService(engine, clock, applications)
        terms = TermsService(engine, clock, organizations, staff)
        reviews = ReviewService(
            engine,
            clock,
            applications,
            questionnaire,
            terms,
            staff,
            calendar,
            production_env=settings.portal_production_env,
        )
        people = PeopleService(engine, clock, sealer, settings.resolved_secret_key)
        notifier = Notifier(engine, mailer)
        monitoring = MonitoringService(engine, clock, applications, members, patients)
        signin = PeopleSignIn(people, security, events)
        envs = settings.environments
        oversight = Oversight(
            engine, staff, organizations, applications, people, clients, activity, access, envs
        )
        directory = Directory(people, monitoring)
        actions = StaffActions(
            engine, clock, staff, applications, people, clients, monitoring, tokens, directory, mailer
        )
        reports = UsageReports(staff, access, clock, envs, monitoring)
        audits = AuditViews(engine, clock, staff, access)
        return cls(
            organizations,
            applications,
            questionnaire,
            terms,
            reviews,
            staff,
            calendar,
            people,
            notifier,
            monitoring,
            signin,
            oversight,
            actions,
            reports,
            audits,
            Recovery(engine, clock, people, security.throttle.counter),
            directory,
        )
