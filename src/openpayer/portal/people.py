"""Developer and staff accounts moved to the accounts domain (`openpayer.accounts.people`); these names stay
importable from here for the portal's modules."""

from openpayer.accounts.people import VERIFY_LIFETIME, PeopleService, Person

__all__ = ["VERIFY_LIFETIME", "PeopleService", "Person"]
