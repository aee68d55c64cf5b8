"""Imports every domain's tables so that Alembic and `metadata.create_all` see the whole schema."""

from openpayer.accounts import models as account_tables
from openpayer.email import tables as email_tables
from openpayer.fhir.storage import tables as fhir_tables
from openpayer.incidents import tables as incident_tables
from openpayer.jobs import tables as job_tables
from openpayer.members import models as member_tables
from openpayer.oauth import models as oauth_tables
from openpayer.policy import tables as policy_tables
from openpayer.portal import models as portal_tables
from openpayer.security import models as security_tables

__all__ = [
    "account_tables",
    "email_tables",
    "fhir_tables",
    "incident_tables",
    "job_tables",
    "member_tables",
    "oauth_tables",
    "policy_tables",
    "portal_tables",
    "security_tables",
]
