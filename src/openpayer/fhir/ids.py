"""FHIR logical ids (R4 §2.24.0.2 `id`): 1–64 characters of A–Z, a–z, 0–9, '-' and '.'."""

from __future__ import annotations

import re

_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def is_valid_id(value: str) -> bool:
    return _ID.fullmatch(value) is not None
