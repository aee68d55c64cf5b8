"""ExplanationOfBenefit resources of every CARIN BB 2.0.0 type, adjudicated in service-date order.

Amounts are integer cents and always add up, per line and in ``total``:

* submitted = eligible (allowed) + discount
* eligible = deductible + copay + coinsurance + benefit
* memberliability = paidbypatient = deductible + copay + coinsurance; paidtoprovider = benefit

Institutional inpatient claims carry the amounts at the header (DRG payment), every other type per item
(CARIN's EOB-institutional-item-or-header-adjudication rule). Cost sharing follows the member's product
(deductible, copays, coinsurance, out-of-pocket maximum) and the formulary tier for drugs.
"""

from __future__ import annotations

from collections.abc import Iterator
from random import Random

from . import codes as C
from .common import (
    CLAIM_ID_SYSTEM,
    P_EOB_INPATIENT,
    P_EOB_ORAL,
    P_EOB_OUTPATIENT,
    P_EOB_PHARMACY,
    P_EOB_PROFESSIONAL,
    Resource,
    cc,
    instant,
    iso,
    meta,
    money,
    ref,
)
from .directory import Org, Practitioner
from .formulary import FORMULARIES
from .members import Member, coverage_id
from .plans import PAYER_NAME, PAYER_REF, Product
from .story import Fill, Story, Visit

CB = "http://hl7.org/fhir/us/carin-bb/CodeSystem/"
ADJ = "http://terminology.hl7.org/CodeSystem/adjudication"
C4ADJ = CB + "C4BBAdjudication"
DISC = CB + "C4BBAdjudicationDiscriminator"
STATUS = CB + "C4BBPayerAdjudicationStatus"
SI = CB + "C4BBSupportingInfoType"
ROLE = CB + "C4BBClaimCareTeamRole"
DXTYPE = "http://terminology.hl7.org/CodeSystem/ex-diagnosistype"
CATEGORIES = (
    (ADJ, "submitted"),
    (ADJ, "eligible"),
    (C4ADJ, "discount"),
    (ADJ, "deductible"),
    (ADJ, "copay"),
    (C4ADJ, "coinsurance"),
    (C4ADJ, "memberliability"),
    (ADJ, "benefit"),
    (C4ADJ, "paidtoprovider"),
    (C4ADJ, "paidbypatient"),
)
# Preventive services (ACA / Medicare: no cost sharing in network): well visits, vaccines, screenings.
PREVENTIVE_CPT = frozenset(
    {"99391", "99392", "99393", "99394", "99395", "99396", "99397", "G0439", "90471", "90656", "90662",
     "90715", "90750", "90677", "90651", "90707", "90700", "90716", "77067", "45378"}
)  # fmt: skip
DENTAL_DEDUCTIBLE = 5000


class Accumulators:
    """Year-to-date deductible and out-of-pocket of one member."""

    __slots__ = ("deductible", "dental_deductible", "oop")

    def __init__(self) -> None:
        self.deductible = 0
        self.dental_deductible = 0
        self.oop = 0


def share(p: Product, acc: Accumulators, allowed: int, rule: str, copay: int = 0) -> tuple[int, int, int]:
    """(deductible, copay, coinsurance) for one line; ``rule`` is preventive, copay or deductible."""
    if rule == "preventive" or allowed == 0:
        return 0, 0, 0
    ded = cp = co = 0
    if rule == "copay":
        cp = min(allowed, copay)
    else:
        ded = min(allowed, max(0, p.deductible - acc.deductible))
        co = (allowed - ded) * p.coinsurance // 100
    room = max(0, p.oop_max - acc.oop) if p.oop_max else ded + cp + co
    over = ded + cp + co - room
    if over > 0:  # out-of-pocket maximum reached: the plan pays the rest
        cut = min(co, over)
        co, over = co - cut, over - cut
        cut = min(cp, over)
        cp, over = cp - cut, over - cut
        ded -= over
    acc.deductible += ded
    acc.oop += ded + cp + co
    return ded, cp, co


def _amounts(sub: int, allowed: int, ded: int, cp: int, co: int) -> list[int]:
    member = ded + cp + co
    return [sub, allowed, sub - allowed, ded, cp, co, member, allowed - member, allowed - member, member]


def _adjudication(values: list[int]) -> list[Resource]:
    return [
        {"category": {"coding": [{"system": s, "code": c}]}, "amount": {"value": v / 100, "currency": "USD"}}
        for (s, c), v in zip(CATEGORIES, values, strict=True)
    ]


def _status(slice_code: str, status: str) -> Resource:
    return {"category": cc(DISC, slice_code), "reason": cc(STATUS, status)}


def _si(seq: int, slice_code: str, **value: object) -> Resource:
    return {"sequence": seq, "category": cc(SI, slice_code), **value}


def _care(seq: int, prac: Practitioner, role_system: str, role: str) -> Resource:
    return {
        "sequence": seq,
        "provider": ref(prac.reference, prac.display),
        "role": cc(role_system, role),
        "qualification": cc(C.NUCC, prac.specialty[1], prac.specialty[2]),
    }


class ClaimWriter:
    """Renders a member's story into EOBs. One per member (holds the accumulators and the sequence)."""

    def __init__(self, story: Story, start: int, dental_product: Product, rng: Random) -> None:
        self.s = story
        self.m: Member = story.member
        self.start = start
        self.dental = dental_product
        self.rng = rng
        self.acc = Accumulators()
        self.n = 0

    def _network(self, org: Org, product: Product) -> str:
        return "innetwork" if product.network in org.networks else "outofnetwork"

    def _base(
        self,
        profile: str,
        ctype: str,
        start: int,
        end: int,
        provider: Resource,
        dental: bool = False,
        processing: int | None = None,
    ) -> tuple[Resource, int, int]:
        self.n += 1
        received = end + (processing if processing is not None else self.rng.randrange(1, 10))
        created = received + (0 if processing == 0 else self.rng.randrange(1, 12))
        m = self.m
        eob: Resource = {
            "resourceType": "ExplanationOfBenefit",
            "id": f"eob-{m.num}-{self.n:03d}",
            "meta": meta((profile,), instant(created + 1, "02:00")),
            "identifier": [
                {
                    "type": cc(CB + "C4BBIdentifierType", "uc", "Unique Claim ID"),
                    "system": CLAIM_ID_SYSTEM,
                    "value": f"{iso(received).replace('-', '')}{m.num}{self.n:03d}",
                }
            ],
            "status": "active",
            "type": cc("http://terminology.hl7.org/CodeSystem/claim-type", ctype),
            "use": "claim",
            "patient": ref(m.reference, m.name_text),
            "billablePeriod": {"start": iso(start), "end": iso(end)},
            "created": instant(created, "01:00"),
            "insurer": ref(PAYER_REF, PAYER_NAME),
            "provider": provider,
            "payee": {
                "type": cc("http://terminology.hl7.org/CodeSystem/payeetype", "provider"),
                "party": dict(provider),
            },
            "outcome": "complete",
            "insurance": [{"focal": True, "coverage": ref("Coverage/" + coverage_id(m, dental))}],
        }
        return eob, received, created

    @staticmethod
    def _finish(eob: Resource, totals: list[int], created_day: int) -> Resource:
        eob["total"] = _adjudication(totals)
        eob["payment"] = {
            "type": cc(STATUS, "paid"),
            "date": iso(created_day + 1),
            "amount": money(totals[8]),
        }
        return eob

    def _diagnoses(self, dx: list[tuple[str, str]], first: str, rest: tuple[str, str]) -> list[Resource]:
        out = []
        for i, (code, display) in enumerate(dx, start=1):
            kind = cc(DXTYPE, first) if i == 1 else cc(*rest)
            out.append(
                {"sequence": i, "diagnosisCodeableConcept": cc(C.ICD10CM, code, display), "type": [kind]}
            )
        return out

    # --- professional ---------------------------------------------------------------------------------
    def professional(
        self, v: Visit, lines: list[tuple[str, str, str]], prac: Practitioner, pos: str
    ) -> Resource:
        m, p = self.m, self.m.product
        org = prac.org if v.kind in ("er", "outpatient", "inpatient") else v.org
        provider = ref(org.reference, org.name)
        eob, received, created = self._base(P_EOB_PROFESSIONAL, "professional", v.start, v.end, provider)
        net = self._network(org, p)
        eob["careTeam"] = [_care(1, prac, ROLE, "rendering")]
        if v.referrer is not None and v.referrer is not prac:
            eob["careTeam"].append(_care(2, v.referrer, ROLE, "referring"))
        eob["supportingInfo"] = [
            _si(1, "clmrecvddate", timingDate=iso(received)),
            _si(2, "servicefacility", valueReference=ref(v.org.reference, v.org.name)),
            _si(3, "patientaccountnumber", valueString=f"PA{m.num}{v.seq:03d}"),
        ]
        dx = v.dx + [(c.code, c.display) for c in self.s.chronic if (c.code, c.display) not in v.dx][:2]
        eob["diagnosis"] = self._diagnoses(dx, "principal", (CB + "C4BBClaimDiagnosisType", "secondary"))
        pcp_like = prac.specialty[4] == "primary"
        items, totals = [], [0] * 10
        rate = 45 if p.medicare else 62
        for i, (system, code, modifier) in enumerate(lines, start=1):
            display, charge = C.PROF[code]
            allowed = charge * rate // 100
            if v.kind in ("annual", "immunization") or code in PREVENTIVE_CPT:
                rule = "preventive"
            elif (code.startswith("992") and v.kind in ("office", "acute", "therapy")) or code in (
                "90834",
                "97110",
            ):
                rule = "copay" if i == 1 else "deductible"
            else:
                rule = "deductible"
            ded, cp, co = share(p, self.acc, allowed, rule, p.pcp_copay if pcp_like else p.specialist_copay)
            values = _amounts(charge, allowed, ded, cp, co)
            totals = [a + b for a, b in zip(totals, values, strict=True)]
            item: Resource = {
                "sequence": i,
                "careTeamSequence": [1],
                "diagnosisSequence": [1],
                "productOrService": cc(system, code, display),
                "servicedDate": iso(v.start if i == 1 or v.kind != "inpatient" else v.end),
                "locationCodeableConcept": cc(C.POS, pos),
                "quantity": {"value": 1},
                "net": money(charge),
                "adjudication": [*_adjudication(values), _status("benefitpaymentstatus", net)],
            }
            if modifier:
                item["modifier"] = [cc(C.CPT, modifier)]
            items.append(item)
        eob["item"] = items
        eob["adjudication"] = [_status("billingnetworkstatus", net), _status("renderingnetworkstatus", net)]
        return self._finish(eob, totals, created)

    # --- institutional -------------------------------------------------------------------------------
    def _institutional_info(
        self, v: Visit, received: int, bill: str, origin: str, adm: str
    ) -> list[Resource]:
        m = self.m
        return [
            _si(1, "clmrecvddate", timingDate=iso(received)),
            _si(2, "typeofbill", code=cc(C.TYPE_OF_BILL, bill)),
            _si(3, "pointoforigin", code=cc(C.POINT_OF_ORIGIN, origin)),
            _si(4, "admtype", code=cc(C.ADMIT_TYPE, adm)),
            _si(5, "discharge-status", code=cc(C.DISCHARGE_STATUS, "01", "Discharged to home or self care")),
            _si(6, "medicalrecordnumber", valueString=f"MRN{m.num}"),
            _si(7, "patientaccountnumber", valueString=f"HA{m.num}{v.seq:03d}"),
        ]

    def outpatient(self, v: Visit) -> Resource:
        p = self.m.product
        key, _dx, lines, _prof, _pos = v.scenario
        er = key.startswith("er")
        eob, received, created = self._base(
            P_EOB_OUTPATIENT, "institutional", v.start, v.end, ref(v.org.reference, v.org.name)
        )
        eob["subType"] = cc(CB + "C4BBInstitutionalClaimSubType", "outpatient", "Outpatient")
        net = self._network(v.org, p)
        eob["careTeam"] = [_care(1, v.prac, ROLE, "attending")]
        if v.referrer is not None:
            eob["careTeam"].append(_care(2, v.referrer, ROLE, "referring"))
        eob["supportingInfo"] = self._institutional_info(
            v, received, "0131", "1" if er else "2", "1" if er else "3"
        )
        dx = v.dx + [(c.code, c.display) for c in self.s.chronic][:2]
        eob["diagnosis"] = self._diagnoses(dx, "principal", (CB + "C4BBClaimDiagnosisType", "other"))
        rate = 40 if p.medicare else 55
        items, totals = [], [0] * 10
        for i, (rev, cpt, charge) in enumerate(lines, start=1):
            allowed = charge * rate // 100
            if cpt in PREVENTIVE_CPT:
                rule = "preventive"
            elif er:
                rule = "copay" if i == 1 else "preventive"  # the ER copay covers the visit
            else:
                rule = "deductible"
            values = _amounts(charge, allowed, *share(p, self.acc, allowed, rule, p.er_copay))
            totals = [a + b for a, b in zip(totals, values, strict=True)]
            product = (
                cc(C.CPT, cpt, C.PROF[cpt][0])
                if cpt
                else cc(
                    "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                    "not-applicable",
                    "Not Applicable",
                )
            )
            items.append(
                {
                    "sequence": i,
                    "careTeamSequence": [1],
                    "diagnosisSequence": [1],
                    "revenue": cc(C.REVENUE, rev, C.REV[rev]),
                    "productOrService": product,
                    "servicedDate": iso(v.start),
                    "quantity": {"value": 1},
                    "net": money(charge),
                    "adjudication": _adjudication(values),
                }
            )
        eob["item"] = items
        eob["adjudication"] = [_status("benefitpaymentstatus", net), _status("billingnetworkstatus", net)]
        return self._finish(eob, totals, created)

    def inpatient(self, v: Visit) -> Resource:
        p = self.m.product
        key, drg, drg_title, dx, pcs, _los, adm, rev_lines, *_ = v.scenario
        eob, received, created = self._base(
            P_EOB_INPATIENT, "institutional", v.start, v.end, ref(v.org.reference, v.org.name)
        )
        eob["subType"] = cc(CB + "C4BBInstitutionalClaimSubType", "inpatient", "Inpatient")
        net = self._network(v.org, p)
        eob["careTeam"] = [_care(1, v.prac, ROLE, "attending")]
        if v.surgeon is not None:
            eob["careTeam"].append(_care(2, v.surgeon, ROLE, "operating"))
        info = self._institutional_info(v, received, "0111", "1" if adm == "1" else "2", adm)
        info.insert(0, _si(0, "admissionperiod", timingPeriod={"start": iso(v.start), "end": iso(v.end)}))
        info.append(_si(8, "drg", code=cc(C.MS_DRG, drg, drg_title)))
        for n, entry in enumerate(info, start=1):
            entry["sequence"] = n
        eob["supportingInfo"] = info
        diagnoses = [
            {
                "sequence": 1,
                "diagnosisCodeableConcept": cc(C.ICD10CM, *dx),
                "type": [cc(DXTYPE, "principal")],
                "onAdmission": cc(C.POA, "Y"),
            }
        ]
        for i, c in enumerate(self.s.chronic[:3], start=2):
            diagnoses.append(
                {
                    "sequence": i,
                    "diagnosisCodeableConcept": cc(C.ICD10CM, c.code, c.display),
                    "type": [cc(CB + "C4BBClaimDiagnosisType", "other")],
                    "onAdmission": cc(C.POA, "Y"),
                }
            )
        if key == "delivery":
            diagnoses.append(
                {
                    "sequence": len(diagnoses) + 1,
                    "diagnosisCodeableConcept": cc(C.ICD10CM, "Z37.0", "Single live birth"),
                    "type": [cc(CB + "C4BBClaimDiagnosisType", "other")],
                    "onAdmission": cc(C.POA, "Y"),
                }
            )
        eob["diagnosis"] = diagnoses
        if pcs:
            eob["procedure"] = [
                {
                    "sequence": 1,
                    "type": [cc(CB + "C4BBClaimProcedureType", "principal")],
                    "date": instant(v.start + (1 if v.end > v.start else 0), "09:00"),
                    "procedureCodeableConcept": cc(C.ICD10PCS, pcs, C.PCS[pcs]),
                }
            ]
        days = max(1, v.end - v.start)
        items, charges = [], 0
        for i, (rev, per_day, charge) in enumerate(rev_lines, start=1):
            qty = days if per_day else 1
            charges += charge * qty
            items.append(
                {
                    "sequence": i,
                    "revenue": cc(C.REVENUE, rev, C.REV[rev]),
                    "productOrService": cc(
                        "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                        "not-applicable",
                        "Not Applicable",
                    ),
                    "servicedPeriod": {"start": iso(v.start), "end": iso(v.end)},
                    "quantity": {"value": qty},
                    "net": money(charge * qty),
                }
            )
        allowed = charges * (30 if p.medicare else 45) // 100
        if p.medicare:
            values = _amounts(charges, allowed, *share(p, self.acc, allowed, "copay", p.inpatient_copay))
        else:
            values = _amounts(charges, allowed, *share(p, self.acc, allowed, "deductible"))
        eob["item"] = items
        eob["adjudication"] = [
            _status("benefitpaymentstatus", net),
            _status("billingnetworkstatus", net),
            *_adjudication(values),
        ]
        return self._finish(eob, values, created)

    # --- pharmacy --------------------------------------------------------------------------------------
    def pharmacy(self, f: Fill) -> Resource:
        p = self.m.product
        rx, drug = f.rx, f.rx.drug
        org = f.pharmacy
        eob, received, created = self._base(
            P_EOB_PHARMACY, "pharmacy", f.date, f.date, ref(org.reference, org.name), processing=0
        )
        net = self._network(org, p)
        eob["careTeam"] = [
            {
                "sequence": 1,
                "provider": ref(rx.prescriber.reference, rx.prescriber.display),
                "role": cc(ROLE, "prescribing", "Prescribing provider"),
            }
        ]
        daw = "1" if drug.brand and drug.generic_available else "0"
        eob["supportingInfo"] = [
            _si(1, "dayssupply", valueQuantity={"value": rx.days}),
            _si(
                2,
                "dawcode",
                code=cc(
                    "http://terminology.hl7.org/CodeSystem/NCPDPDispensedAsWrittenOrProductSelectionCode", daw
                ),
            ),
            _si(3, "refillnum", valueQuantity={"value": f.refill_no}),
            _si(4, "refillsauthorized", valueQuantity={"value": rx.refills}),
            _si(
                5,
                "brandgenericindicator",
                code=cc(
                    "http://terminology.hl7.org/CodeSystem/NCPDPBrandGenericIndicator",
                    "1" if drug.brand else "2",
                ),
            ),
            _si(
                6,
                "rxorigincode",
                code=cc("http://terminology.hl7.org/CodeSystem/NCPDPPrescriptionOriginCode", "3"),
            ),
            _si(7, "clmrecvddate", timingDate=iso(received)),
            _si(8, "compoundcode", code=cc("http://terminology.hl7.org/CodeSystem/NCPDPCompoundCode", "1")),
        ]
        eob["diagnosis"] = [
            {
                "sequence": 1,
                "diagnosisCodeableConcept": cc(C.ICD10CM, *rx.reason),
                "type": [cc(DXTYPE, "principal")],
            }
        ]
        cost = drug.unit_cost * rx.qty
        submitted = cost + 250
        allowed = cost * 86 // 100 + 175
        formulary = FORMULARIES[p.formulary_id]
        cp, co = formulary.cost_share(drug, allowed, rx.mail)
        room = max(0, p.oop_max - self.acc.oop)
        if cp + co > room:
            cp, co = min(cp, room), min(co, room - min(cp, room))
        self.acc.oop += cp + co
        values = _amounts(submitted, allowed, 0, cp, co)
        eob["item"] = [
            {
                "sequence": 1,
                "careTeamSequence": [1],
                "diagnosisSequence": [1],
                "productOrService": cc(C.NDC, drug.ndc, drug.label),
                "servicedDate": iso(f.date),
                "quantity": {"value": rx.qty},
                "net": money(submitted),
                "adjudication": _adjudication(values),
            }
        ]
        eob["adjudication"] = [_status("benefitpaymentstatus", net), _status("billingnetworkstatus", net)]
        return self._finish(eob, values, created)

    # --- oral ------------------------------------------------------------------------------------------
    def oral(self, v: Visit) -> Resource:
        m, p = self.m, self.dental
        prac = v.prac
        eob, received, created = self._base(
            P_EOB_ORAL, "oral", v.start, v.end, ref(prac.reference, prac.display), dental=True
        )
        net = self._network(v.org, p)
        eob["careTeam"] = [_care(1, prac, ROLE, "rendering")]
        eob["supportingInfo"] = [
            _si(1, "clmrecvddate", timingDate=iso(received)),
            _si(2, "servicefacility", valueReference=ref(v.org.reference, v.org.name)),
            _si(3, "patientaccountnumber", valueString=f"DA{m.num}{v.seq:03d}"),
        ]
        eob["diagnosis"] = self._diagnoses(v.dx, "principal", (CB + "C4BBClaimDiagnosisType", "secondary"))
        items, totals = [], [0] * 10
        for i, (cdt, tooth) in enumerate(v.teeth, start=1):
            display, charge, klass = C.CDT_CODES[cdt]
            allowed = charge * 75 // 100
            ded = cp = co = 0
            if klass != "preventive":
                ded = min(allowed, max(0, DENTAL_DEDUCTIBLE - self.acc.dental_deductible))
                co = (allowed - ded) * p.coinsurance // 100
                self.acc.dental_deductible += ded
            values = _amounts(charge, allowed, ded, cp, co)
            totals = [a + b for a, b in zip(totals, values, strict=True)]
            item: Resource = {
                "sequence": i,
                "careTeamSequence": [1],
                "diagnosisSequence": [2 if tooth and len(v.dx) > 1 else 1],
                "productOrService": cc(C.CDT, cdt, display),
                "servicedDate": iso(v.start),
                "locationCodeableConcept": cc(C.POS, "11", "Office"),
                "quantity": {"value": 1},
                "net": money(charge),
                "adjudication": [*_adjudication(values), _status("benefitpaymentstatus", net)],
            }
            if tooth:
                item["bodySite"] = cc(C.TOOTH, tooth)
                item["subSite"] = [cc(C.SURFACE, "O", "Occlusal")]
            items.append(item)
        eob["item"] = items
        eob["adjudication"] = [
            _status("billingnetworkstatus", net),
            _status("renderingnetworkstatus", net),
            _status("benefitpaymentstatus", net),
        ]
        return self._finish(eob, totals, created)

    # --- all claims of the member, in adjudication order -----------------------------------------------
    def eobs(self) -> Iterator[Resource]:
        events: list[tuple[int, int, object]] = [(v.start, v.seq, v) for v in self.s.visits]
        events += [(f.date, 1000 + i, f) for i, f in enumerate(self.s.fills)]
        events.sort(key=lambda e: (e[0], e[1]))
        for _day, _n, event in events:
            if isinstance(event, Fill):
                yield self.pharmacy(event)
                continue
            assert isinstance(event, Visit)
            v = event
            if v.kind == "dental":
                yield self.oral(v)
            elif v.kind == "inpatient":
                yield self.inpatient(v)
                yield self.professional(v, v.lines, v.prac, "21")
                if v.surgeon is not None:
                    cpt = v.scenario[10]
                    yield self.professional(v, [(C.CPT, cpt, "")], v.surgeon, "21")
            elif v.kind in ("er", "outpatient"):
                yield self.outpatient(v)
                yield self.professional(v, v.lines, v.prac, v.scenario[4])
            else:
                lines = list(v.lines)
                lines += [(C.CPT, "36415", "")] if v.labs else []
                lines += [(C.CPT, C.PANELS[k][2], "") for k in v.labs]
                if v.vaccines:
                    lines.append((C.CPT, "90471", ""))
                    lines += [(C.CPT, C.VACCINES[k][2], "") for k in v.vaccines]
                yield self.professional(v, lines, v.prac, "11")
