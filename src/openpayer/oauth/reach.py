"""Whether a resource is inside an access token's read restriction, cheapest answer first.

1. Types the restriction admits whole (the non-patient types a patient's app needs) need no query.
2. A snapshot of the patient compartment's (type, id) pairs, read with the same restriction at most every
   `ttl` seconds, answers for resources already in it.
3. Anything else (a resource created since, or another member's) is one query, remembered for `ttl`.

The queries are the FHIR service's (`FhirService.visible`, `visible_ids`): the restriction decides in SQL,
and this module never touches the FHIR tables.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from openpayer.fhir.search.compartment import compartment_types
from openpayer.fhir.services import FhirService
from openpayer.oauth.bearer import EXTRA_TYPES, Grant
from openpayer.web.threads import run_blocking

_MEMBERSHIP_CACHE = 20_000
_SNAPSHOTS = 512  # patients whose compartment (type, id) pairs are held in memory
_SNAPSHOT_MAX = 50_000  # larger compartments are checked read by read


class Reach:
    def __init__(self, fhir: FhirService, ttl: float) -> None:
        self.fhir = fhir
        self.ttl = ttl
        self._membership: OrderedDict[tuple[str, str, str, str], tuple[float, bool]] = OrderedDict()
        self._snapshots: OrderedDict[tuple[str, str], tuple[float, frozenset[tuple[str, str]] | None]] = (
            OrderedDict()
        )

    async def reachable(self, env: str, grant: Grant, rtype: str, rid: str) -> bool:
        restriction = grant.read
        assert restriction is not None
        if grant.info.patient_id is not None and rtype in EXTRA_TYPES and rtype not in grant.bounded:
            return True
        snapshot = await self._snapshot(env, grant)
        if snapshot is not None and (rtype, rid) in snapshot:
            return True
        key = (env, restriction.key, rtype, rid)
        hit = self._membership.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        found = await run_blocking(self.fhir.visible, env, rtype, rid, restriction)
        self._membership[key] = (time.monotonic(), found)
        if len(self._membership) > _MEMBERSHIP_CACHE:
            self._membership.popitem(last=False)
        return found

    async def _snapshot(self, env: str, grant: Grant) -> frozenset[tuple[str, str]] | None:
        restriction = grant.read
        if restriction is None or grant.info.patient_id is None:
            return None
        key = (env, restriction.key)
        hit = self._snapshots.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        snapshot = await run_blocking(
            self.fhir.visible_ids, env, compartment_types(), restriction, _SNAPSHOT_MAX
        )
        self._snapshots[key] = (time.monotonic(), snapshot)
        if len(self._snapshots) > _SNAPSHOTS:
            self._snapshots.popitem(last=False)
        return snapshot
