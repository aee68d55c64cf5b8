"""The SMART tests: bearer tokens required on /{env}/fhir, and two members with data of their own."""

from __future__ import annotations

import pytest

from openpayer.bootstrap import Services
from openpayer.config import Settings
from openpayer.oauth.testing import two_member_world


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The guard on, whatever the shared fixture chooses for engine tests."""
    return settings.model_copy(update={"auth_enforce": True})


@pytest.fixture
def world(services: Services) -> dict[str, str]:
    return two_member_world(services, "sandbox")
