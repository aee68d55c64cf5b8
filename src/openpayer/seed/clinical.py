"""US Core 6.1.0 clinical records rendered from a member's story: Condition, AllergyIntolerance,
MedicationRequest, Encounter, vital-sign and lab Observations, DiagnosticReport, Procedure, Immunization
and DocumentReference (with a small base64 text note).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from random import Random

from . import codes as C
from .common import ENCOUNTER_ID_SYSTEM, USC, Resource, cc, coding, instant, iso, meta, ref
from .members import Member
from .story import Rx, Story, Visit

OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERP = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
COND_CAT = "http://terminology.hl7.org/CodeSystem/condition-category"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFY = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ENC_CLASS = {"inpatient": ("IMP", "inpatient encounter"), "er": ("EMER", "emergency")}
DOC_TYPES = {
    "annual": ("34117-2", "History and physical note"),
    "inpatient": ("18842-5", "Discharge summary"),
    "er": ("34111-5", "Emergency department Note"),
    "outpatient": ("11504-8", "Surgical operation note"),
}
PROGRESS_NOTE = ("11506-3", "Progress note")
INFECTIOUS = frozenset(("J02.0", "J02.9", "J11.1", "J20.9", "J01.90", "H66.90", "J06.9", "L03.115", "J18.9"))
NOT_PROBLEMS = frozenset(("contraception",))


def _vs_cat() -> list[Resource]:
    return [{"coding": [coding(OBS_CAT, "vital-signs", "Vital Signs")], "text": "Vital Signs"}]


def _qty(value: float, unit: str, code: str | None = None) -> Resource:
    return {"value": value, "unit": unit, "system": C.UCUM, "code": code or unit}


class ClinicalWriter:
    """Renders one member's story into US Core resources, with per-member id counters."""

    def __init__(self, story: Story, start: int, rng: Random) -> None:
        self.s = story
        self.m: Member = story.member
        self.start = start
        self.rng = rng
        self.counts: dict[str, int] = {}
        m = self.m
        self.patient = ref(m.reference, m.name_text)
        age = story.age
        keys = {c.key for c in story.chronic}
        if age >= 18:
            self.height = self.rng.gauss(162 if m.female else 176, 6.5)
            self.bmi = self.rng.uniform(30.5, 39) if "obesity" in keys else self.rng.gauss(26, 3)
        else:
            self.height = 52 + min(age, 17) * 6.4 + self.rng.uniform(-4, 4)
            self.bmi = self.rng.uniform(15, 20) if "obesity" not in keys else self.rng.uniform(22, 28)
        self.hypertensive = "htn" in keys
        self.keys = keys

    def _id(self, kind: str) -> str:
        n = self.counts.get(kind, 0) + 1
        self.counts[kind] = n
        return f"{kind.lower()}-{self.m.num}-{n:03d}"

    # --- member-level records -------------------------------------------------------------------------
    def problems(self) -> Iterator[Resource]:
        for c in self.s.chronic:
            if c.key in NOT_PROBLEMS:
                continue
            yield {
                "resourceType": "Condition",
                "id": self._id("Condition"),
                "meta": meta((USC + "us-core-condition-problems-health-concerns",), instant(self.start - 5)),
                "extension": [
                    {
                        "url": "http://hl7.org/fhir/StructureDefinition/condition-assertedDate",
                        "valueDateTime": iso(c.onset),
                    }
                ],
                "clinicalStatus": cc(CLINICAL, "active", "Active"),
                "verificationStatus": cc(VERIFY, "confirmed", "Confirmed"),
                "category": [cc(COND_CAT, "problem-list-item", "Problem List Item")],
                "code": cc(C.ICD10CM, c.code, c.display, c.display),
                "subject": dict(self.patient),
                "onsetDateTime": iso(c.onset),
                "recordedDate": iso(c.onset),
            }

    def allergies(self) -> Iterator[Resource]:
        for system, code, display, category, (rcode, rdisplay) in self.s.allergies:
            severe = rcode == "39579001"
            recorded = self.start - self.rng.randrange(200, 3000)
            yield {
                "resourceType": "AllergyIntolerance",
                "id": self._id("AllergyIntolerance"),
                "meta": meta((USC + "us-core-allergyintolerance",), instant(self.start - 5)),
                "clinicalStatus": cc(
                    "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active", "Active"
                ),
                "verificationStatus": cc(
                    "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                    "confirmed",
                    "Confirmed",
                ),
                "type": "allergy",
                "category": [category],
                "criticality": "high" if severe else "low",
                "code": cc(system, code, display, display.removesuffix(" (substance)")),
                "patient": dict(self.patient),
                "recordedDate": iso(max(recorded, self.m.birth + 200)),
                "recorder": ref(self.s.pcp.reference, self.s.pcp.display),
                "reaction": [
                    {
                        "manifestation": [cc(C.SNOMED, rcode, rdisplay, rdisplay)],
                        "severity": "severe" if severe else "mild",
                    }
                ],
            }

    def medication_request(self, rx: Rx, encounter: str | None) -> Resource:
        d = rx.drug
        ended = not rx.chronic and rx.authored + rx.days < self.start + 364
        res: Resource = {
            "resourceType": "MedicationRequest",
            "id": f"medicationrequest-{self.m.num}-{rx.seq:03d}",
            "meta": meta((USC + "us-core-medicationrequest",), instant(max(rx.authored, self.start - 5) + 1)),
            "status": "completed" if ended else "active",
            "intent": "order",
            "category": [
                cc(
                    "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                    "community",
                    "Community",
                )
            ],
            "reportedBoolean": False,
            "medicationCodeableConcept": cc(C.RXNORM, d.rxcui, d.name, d.name),
            "subject": dict(self.patient),
            "authoredOn": iso(rx.authored),
            "requester": ref(rx.prescriber.reference, rx.prescriber.display),
            "reasonCode": [cc(C.ICD10CM, *rx.reason)],
            "dosageInstruction": [{"sequence": 1, "text": d.sig, "asNeededBoolean": "as needed" in d.sig}],
            "dispenseRequest": {
                "validityPeriod": {"start": iso(rx.authored), "end": iso(rx.authored + 365)},
                "numberOfRepeatsAllowed": rx.refills,
                "quantity": {"value": rx.qty, "unit": d.unit},
                "expectedSupplyDuration": _qty(rx.days, "days", "d"),
            },
        }
        if encounter:
            res["encounter"] = ref(encounter)
        return res

    def standing_medications(self) -> Iterator[Resource]:
        for rx in self.s.rxs:
            if rx.encounter_seq == 0:
                yield self.medication_request(rx, None)

    # --- visit-level records -------------------------------------------------------------------------
    def visit(self, v: Visit) -> Iterator[Resource]:
        m = self.m
        enc_id = f"encounter-{m.num}-{v.seq:03d}"
        enc_ref = "Encounter/" + enc_id
        lu = instant(v.end + 1, "03:00")
        start_dt = f"{iso(v.start)}T{v.hhmm}:00Z"
        minutes = int(v.hhmm[3:]) + 30
        end_dt = f"{iso(v.end)}T{int(v.hhmm[:2]) + minutes // 60:02d}:{minutes % 60:02d}:00Z"
        type_system, type_code, type_display = self._encounter_type(v)
        klass = ENC_CLASS.get(v.kind, ("AMB", "ambulatory"))
        enc: Resource = {
            "resourceType": "Encounter",
            "id": enc_id,
            "meta": meta((USC + "us-core-encounter",), lu),
            "identifier": [{"system": ENCOUNTER_ID_SYSTEM, "value": f"V{m.num}{v.seq:03d}"}],
            "status": "finished",
            "class": coding(ACT, *klass),
            "type": [cc(type_system, type_code, type_display, type_display)],
            "subject": dict(self.patient),
            "participant": [
                {
                    "type": [
                        cc(
                            "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                            "ATND" if v.kind == "inpatient" else "PPRF",
                        )
                    ],
                    "individual": ref(v.prac.reference, v.prac.display),
                }
            ],
            "period": {"start": start_dt, "end": end_dt},
            "reasonCode": [cc(C.ICD10CM, code, display) for code, display in v.dx[:1]],
            "location": [{"location": ref(f"Location/{v.org.id}-location", v.org.name)}],
            "serviceProvider": ref(v.org.reference, v.org.name),
        }
        if v.kind == "inpatient":
            enc["hospitalization"] = {
                "admitSource": cc(
                    "http://terminology.hl7.org/CodeSystem/admit-source",
                    *(
                        ("emd", "From accident/emergency department")
                        if v.scenario[6] == "1"
                        else ("gp", "General Practitioner referral")
                    ),
                ),
                "dischargeDisposition": cc(
                    "http://terminology.hl7.org/CodeSystem/discharge-disposition", "home", "Home"
                ),
            }
        yield enc
        if v.kind in ("acute", "er", "outpatient", "inpatient") and not v.dx[0][0].startswith("Z"):
            yield self._encounter_condition(v, enc_ref, lu)
        if v.kind != "dental":
            yield from self._vitals(v, enc_ref, start_dt, lu)
        if v.kind == "annual" and self.s.age >= 13:
            yield self._smoking(v, enc_ref, start_dt, lu)
        for panel in v.labs:
            yield from self._labs(panel, v, enc_ref, start_dt, lu)
        if v.scenario and v.kind in ("inpatient", "outpatient") and (v.kind == "outpatient" or v.scenario[4]):
            yield self._procedure(v, enc_ref, lu)
        for key in v.vaccines:
            yield self._immunization(key, v, enc_ref, start_dt, lu)
        for rx in v.rxs:
            yield self.medication_request(rx, enc_ref)
        if v.kind in DOC_TYPES or (v.kind in ("office", "acute") and self.rng.random() < 0.3):
            yield self._document(v, enc_ref, start_dt, end_dt, lu)

    @staticmethod
    def _encounter_type(v: Visit) -> tuple[str, str, str]:
        if v.kind == "dental":
            code = v.teeth[0][0]
            return C.CDT, code, C.CDT_CODES[code][0]
        if v.kind == "inpatient":
            return C.SNOMED, "32485007", "Hospital admission (procedure)"
        if v.kind == "immunization":
            return C.SNOMED, "185349003", "Encounter for check up (procedure)"
        system, code, _mod = v.lines[0]
        return system, code, C.PROF[code][0]

    def _encounter_condition(self, v: Visit, enc_ref: str, lu: str) -> Resource:
        code, display = v.dx[0]
        resolved = v.kind in ("acute", "er") or (
            bool(v.scenario) and v.scenario[0] in ("appendix", "gallbladder", "delivery")
        )
        res: Resource = {
            "resourceType": "Condition",
            "id": self._id("Condition"),
            "meta": meta((USC + "us-core-condition-encounter-diagnosis",), lu),
            "clinicalStatus": cc(CLINICAL, *(("resolved", "Resolved") if resolved else ("active", "Active"))),
            "verificationStatus": cc(VERIFY, "confirmed", "Confirmed"),
            "category": [cc(COND_CAT, "encounter-diagnosis", "Encounter Diagnosis")],
            "code": cc(C.ICD10CM, code, display, display),
            "subject": dict(self.patient),
            "encounter": ref(enc_ref),
            "onsetDateTime": iso(v.start - (1 if v.kind == "acute" else 0)),
            "recordedDate": iso(v.start),
        }
        if resolved:
            res["abatementDateTime"] = iso(v.end + 10)
        return res

    def _obs(
        self,
        profile: str,
        code: str,
        display: str,
        v: Visit,
        enc_ref: str,
        when: str,
        lu: str,
        category: list[Resource] | None = None,
    ) -> Resource:
        return {
            "resourceType": "Observation",
            "id": self._id("Observation"),
            "meta": meta((USC + profile,), lu),
            "status": "final",
            "category": category or _vs_cat(),
            "code": cc(C.LOINC, code, display, display),
            "subject": dict(self.patient),
            "encounter": ref(enc_ref),
            "effectiveDateTime": when,
            "performer": [ref(v.prac.reference, v.prac.display)],
        }

    def _vitals(self, v: Visit, enc_ref: str, when: str, lu: str) -> Iterator[Resource]:
        rng, age = self.rng, self.s.age
        full = v.kind in ("annual", "inpatient", "er")
        if age >= 3:
            sys_ = round(rng.gauss(138 if self.hypertensive else 117, 9 if age >= 18 else 6)) - (
                15 if age < 13 else 0
            )
            dia = round(sys_ * rng.uniform(0.58, 0.68))
            bp = self._obs(
                "us-core-blood-pressure",
                "85354-9",
                "Blood pressure panel with all children optional",
                v,
                enc_ref,
                when,
                lu,
            )
            bp["component"] = [
                {
                    "code": cc(C.LOINC, "8480-6", "Systolic blood pressure"),
                    "valueQuantity": _qty(sys_, "mm[Hg]"),
                },
                {
                    "code": cc(C.LOINC, "8462-4", "Diastolic blood pressure"),
                    "valueQuantity": _qty(dia, "mm[Hg]"),
                },
            ]
            yield bp
        hr = self._obs("us-core-heart-rate", "8867-4", "Heart rate", v, enc_ref, when, lu)
        hr["valueQuantity"] = _qty(round(rng.gauss(112 if age < 3 else 90 if age < 12 else 74, 8)), "/min")
        yield hr
        if full or v.kind == "acute":
            rr = self._obs("us-core-respiratory-rate", "9279-1", "Respiratory rate", v, enc_ref, when, lu)
            rr["valueQuantity"] = _qty(rng.randrange(24, 34) if age < 3 else rng.randrange(13, 19), "/min")
            yield rr
            fever = any(code in INFECTIOUS for code, _ in v.dx)
            t = self._obs("us-core-body-temperature", "8310-5", "Body temperature", v, enc_ref, when, lu)
            t["valueQuantity"] = _qty(
                round(rng.uniform(37.9, 39.2) if fever else rng.uniform(36.4, 37.2), 1), "Cel"
            )
            yield t
            spo2 = self._obs(
                "us-core-pulse-oximetry",
                "59408-5",
                "Oxygen saturation in Arterial blood by Pulse oximetry",
                v,
                enc_ref,
                when,
                lu,
            )
            spo2["code"]["coding"].append(coding(C.LOINC, "2708-6", "Oxygen saturation in Arterial blood"))
            spo2["valueQuantity"] = _qty(
                rng.randrange(92, 96) if "copd" in self.keys else rng.randrange(96, 100), "%"
            )
            yield spo2
        height = self.height
        weight = self.bmi * (height / 100) ** 2
        w = self._obs("us-core-body-weight", "29463-7", "Body weight", v, enc_ref, when, lu)
        w["valueQuantity"] = _qty(round(weight * rng.uniform(0.98, 1.02), 1), "kg")
        yield w
        if v.kind == "annual":
            h = self._obs("us-core-body-height", "8302-2", "Body height", v, enc_ref, when, lu)
            h["valueQuantity"] = _qty(round(height, 1), "cm")
            yield h
            if age >= 2:
                b = self._obs("us-core-bmi", "39156-5", "Body mass index (BMI) [Ratio]", v, enc_ref, when, lu)
                b["valueQuantity"] = _qty(round(self.bmi, 1), "kg/m2")
                yield b

    def _smoking(self, v: Visit, enc_ref: str, when: str, lu: str) -> Resource:
        cat = [cc(OBS_CAT, "social-history", "Social History")]
        obs = self._obs(
            "us-core-smokingstatus", "72166-2", "Tobacco smoking status", v, enc_ref, when, lu, cat
        )
        obs["issued"] = instant(v.start, "18:00")
        obs["valueCodeableConcept"] = cc(
            C.SNOMED, *self.s.smoking, self.s.smoking[1].removesuffix(" (finding)")
        )
        return obs

    def _lab_value(self, key: str) -> float:
        _code, _display, _unit, low, high, decimals = C.LABS[key]
        rng, keys = self.rng, self.keys
        span = high - low
        value = rng.uniform(low + span * 0.1, high - span * 0.1)
        if "t2dm" in keys and key in ("a1c", "glucose"):
            value = rng.uniform(6.6, 9.4) if key == "a1c" else rng.uniform(120, 230)
        elif "hld" in keys and key in ("chol", "ldl"):
            value = rng.uniform(205, 265) if key == "chol" else rng.uniform(110, 175)
        elif "ckd3" in keys and key in ("creatinine", "bun"):
            value = rng.uniform(1.4, 2.2) if key == "creatinine" else rng.uniform(22, 38)
        elif rng.random() < 0.06:
            value = high * rng.uniform(1.02, 1.15)
        return round(value, decimals) if decimals else round(value)

    def _labs(self, panel: str, v: Visit, enc_ref: str, when: str, lu: str) -> Iterator[Resource]:
        panel_code, panel_display, _cpt, members = C.PANELS[panel]
        issued = instant(v.start + 1, "06:00")
        results = []
        for key in members:
            code, display, unit, low, high, _dec = C.LABS[key]
            value = self._lab_value(key)
            flag = ("H", "High") if value > high else ("L", "Low") if value < low else ("N", "Normal")
            obs = self._obs(
                "us-core-observation-lab",
                code,
                display,
                v,
                enc_ref,
                when,
                lu,
                [cc(OBS_CAT, "laboratory", "Laboratory", "Laboratory")],
            )
            obs["issued"] = issued
            obs["valueQuantity"] = _qty(value, unit)
            obs["interpretation"] = [cc(INTERP, *flag)]
            obs["referenceRange"] = [{"low": _qty(low, unit), "high": _qty(high, unit)}]
            results.append(ref("Observation/" + obs["id"], display))
            yield obs
        yield {
            "resourceType": "DiagnosticReport",
            "id": self._id("DiagnosticReport"),
            "meta": meta((USC + "us-core-diagnosticreport-lab",), lu),
            "status": "final",
            "category": [cc("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB", "Laboratory")],
            "code": cc(C.LOINC, panel_code, panel_display, panel_display),
            "subject": dict(self.patient),
            "encounter": ref(enc_ref),
            "effectiveDateTime": when,
            "issued": issued,
            "performer": [ref(v.org.reference, v.org.name)],
            "result": results,
        }

    def _procedure(self, v: Visit, enc_ref: str, lu: str) -> Resource:
        row = v.scenario
        if v.kind == "inpatient":
            pcs, cpt = row[4], row[10]
            code: Resource = {
                "coding": [coding(C.ICD10PCS, pcs, C.PCS[pcs]), coding(C.CPT, cpt, C.PROF[cpt][0])],
                "text": C.PCS[pcs],
            }
            day = v.start + (1 if v.end > v.start else 0)
            performer = v.surgeon or v.prac
        else:
            cpt = row[3][0][0]
            code = cc(C.CPT, cpt, C.PROF[cpt][0], C.PROF[cpt][0])
            day, performer = v.start, v.prac
        return {
            "resourceType": "Procedure",
            "id": self._id("Procedure"),
            "meta": meta((USC + "us-core-procedure",), lu),
            "status": "completed",
            "code": code,
            "subject": dict(self.patient),
            "encounter": ref(enc_ref),
            "performedDateTime": f"{iso(day)}T{v.hhmm}:00Z",
            "performer": [{"actor": ref(performer.reference, performer.display)}],
            "location": ref(f"Location/{v.org.id}-location", v.org.name),
            "reasonCode": [cc(C.ICD10CM, *v.dx[0])],
        }

    def _immunization(self, key: str, v: Visit, enc_ref: str, when: str, lu: str) -> Resource:
        cvx, display, _cpt, _lo, _hi = C.VACCINES[key]
        return {
            "resourceType": "Immunization",
            "id": self._id("Immunization"),
            "meta": meta((USC + "us-core-immunization",), lu),
            "status": "completed",
            "vaccineCode": cc(C.CVX, cvx, display, display),
            "patient": dict(self.patient),
            "encounter": ref(enc_ref),
            "occurrenceDateTime": when,
            "recorded": when,
            "primarySource": True,
            "location": ref(f"Location/{v.org.id}-location", v.org.name),
            "lotNumber": f"SYN{self.rng.randrange(100000, 999999)}",
            "expirationDate": iso(v.start + 300),
            "site": cc("http://terminology.hl7.org/CodeSystem/v3-ActSite", "LA", "left arm"),
            "route": cc(
                "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration",
                "IM",
                "Injection, intramuscular",
            ),
            "doseQuantity": _qty(0.5, "mL"),
            "performer": [
                {
                    "function": cc(
                        "http://terminology.hl7.org/CodeSystem/v2-0443", "AP", "Administering Provider"
                    ),
                    "actor": ref(v.prac.reference, v.prac.display),
                }
            ],
        }

    def _document(self, v: Visit, enc_ref: str, start_dt: str, end_dt: str, lu: str) -> Resource:
        m = self.m
        loinc, title = DOC_TYPES.get(v.kind, PROGRESS_NOTE)
        assessment = "; ".join(f"{code} {display}" for code, display in v.dx)
        text = (
            f"{title}\nPatient: {m.name_text} (DOB {iso(m.birth)}), member {m.member_no}\n"
            f"Date: {iso(v.start)}  Provider: {v.prac.display}, {v.org.name}\n"
            f"Assessment: {assessment}\nPlan: continue current management; follow up as needed.\n"
            "This is a synthetic record generated by OpenPayer for sandbox use; "
            "it describes no real person.\n"
        )
        return {
            "resourceType": "DocumentReference",
            "id": self._id("DocumentReference"),
            "meta": meta((USC + "us-core-documentreference",), lu),
            "status": "current",
            "docStatus": "final",
            "type": cc(C.LOINC, loinc, title, title),
            "category": [
                cc(
                    "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
                    "clinical-note",
                    "Clinical Note",
                )
            ],
            "subject": dict(self.patient),
            "date": end_dt,
            "author": [ref(v.prac.reference, v.prac.display)],
            "custodian": ref(v.org.reference, v.org.name),
            "description": f"{title} - {v.dx[0][1]}",
            "content": [
                {
                    "attachment": {
                        "contentType": "text/plain;charset=utf-8",
                        "language": "en-US",
                        "data": base64.b64encode(text.encode()).decode("ascii"),
                        "title": title,
                        "creation": end_dt,
                    },
                    "format": coding(
                        "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode",
                        "urn:ihe:iti:xds:2017:mimeTypeSufficient",
                        "mimeType Sufficient",
                    ),
                }
            ],
            "context": {"encounter": [ref(enc_ref)], "period": {"start": start_dt, "end": end_dt}},
        }

    def resources(self) -> Iterator[Resource]:
        yield from self.problems()
        yield from self.allergies()
        yield from self.standing_medications()
        for v in self.s.visits:
            yield from self.visit(v)
