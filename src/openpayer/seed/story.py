"""A member's plan year as plain data: conditions, visits, prescriptions and fills.

Claims (claims.py) and clinical records (clinical.py) are both rendered from this story, which is what keeps
them coherent: the diagnosis on a claim is the condition in the record, the drug on a pharmacy claim is the
drug of a MedicationRequest and of the formulary, the practitioner on the careTeam is the encounter's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from random import Random

from . import codes as C
from .common import DRUGS_BY_KEY, Drug, age_on
from .directory import Directory, Org, Practitioner
from .members import Member

HOURS = tuple(f"{h:02d}:{m:02d}" for h in range(8, 17) for m in (0, 15, 30, 45))
ACUTE_WEIGHTS = tuple(row[3] for row in C.ACUTE)
# Which specialist follows which chronic condition (else the PCP does).
SPECIALIST_FOR = {
    "cad": "cardio",
    "afib": "cardio",
    "chf": "cardio",
    "t2dm": "endo",
    "copd": "pulm",
    "depression": "psych",
    "anxiety": "psychologist",
    "oa_knee": "ortho",
    "gerd": "gi",
    "back_pain": "pt",
}
# Condition -> candidate drug keys (the first whose indication matches is preferred).
DRUG_FOR = {
    "htn": ("lisinopril10", "amlodipine5", "amlodipine10", "metoprolol50"),
    "hld": ("atorvastatin80", "simvastatin20", "ezetimibe10"),
    "t2dm": ("metformin500", "sitagliptin100", "empagliflozin10", "linagliptin5", "dulaglutide", "glargine"),
    "asthma": ("albuterol", "fluticasone44", "montelukast10"),
    "copd": ("albuterol", "advair"),
    "depression": ("sertraline50", "fluoxetine20", "escitalopram10"),
    "anxiety": ("escitalopram10", "sertraline50"),
    "gerd": ("pantoprazole40",),
    "hypothyroid": ("levothyroxine50",),
    "afib": ("apixaban5", "rivaroxaban20", "warfarin5"),
    "cad": ("clopidogrel75", "atorvastatin80"),
    "chf": ("furosemide40", "spironolactone25", "metoprolol50"),
    "ckd3": ("furosemide40",),
    "bph": ("tamsulosin",),
    "osteoporosis": ("alendronate70",),
    "neuropathy": ("gabapentin300",),
    "peanut": ("epinephrine",),
    "rhinitis": ("montelukast10",),
    "contraception": ("medroxyprogesterone",),
    "back_pain": ("diazepam5",),
}


@dataclass(slots=True)
class Chronic:
    key: str
    code: str
    display: str
    onset: int


@dataclass(slots=True)
class Rx:
    drug: Drug
    prescriber: Practitioner
    authored: int
    reason: tuple[str, str]
    chronic: bool
    mail: bool
    days: int
    qty: int
    refills: int
    seq: int = 0
    encounter_seq: int = 0  # 0: written outside the generated visits


@dataclass(slots=True)
class Fill:
    rx: Rx
    date: int
    refill_no: int
    pharmacy: Org


@dataclass(slots=True)
class Visit:
    kind: str  # annual | office | acute | immunization | therapy | er | outpatient | inpatient | dental
    start: int
    end: int
    hhmm: str
    prac: Practitioner
    org: Org
    dx: list[tuple[str, str]]
    lines: list[tuple[str, str, str]] = field(default_factory=list)  # (system, code, modifier)
    labs: list[str] = field(default_factory=list)
    vaccines: list[str] = field(default_factory=list)
    rxs: list[Rx] = field(default_factory=list)
    scenario: tuple = ()  # a row of codes.INPATIENT / codes.OUTPATIENT
    surgeon: Practitioner | None = None
    referrer: Practitioner | None = None
    teeth: list[tuple[str, str]] = field(default_factory=list)  # dental (CDT, tooth number or "")
    seq: int = 0


@dataclass(slots=True)
class Story:
    member: Member
    age: int
    chronic: list[Chronic]
    allergies: list[tuple]
    smoking: tuple[str, str]
    pcp: Practitioner
    visits: list[Visit]
    rxs: list[Rx]
    fills: list[Fill]


class Planner:
    """Draws a member's year. One instance per plan (directory + window); ``plan`` is called per member."""

    def __init__(self, directory: Directory, start: int) -> None:
        self.d = directory
        self.start = start
        self.last_visit_day = start + 330  # leaves time to adjudicate inside the plan year
        self._pracs: dict[tuple[str, str, str, bool], list[Practitioner]] = {}
        self._orgs: dict[tuple[str, str, str], list[Org]] = {}

    # --- providers ------------------------------------------------------------------------------------
    def _prac(self, keys: tuple[str, ...], m: Member, rng: Random) -> Practitioner:
        """A practitioner of the first of ``keys`` practising in the member's city and network; failing
        that, of the first one in the network anywhere; failing that, anyone with the specialty."""
        net = m.product.network
        for local_only in (True, False):
            for key in keys:
                pool = self._pracs.get((key, net.id, m.city.name, local_only))
                if pool is None:
                    ok = [p for p in self.d.by_specialty.get(key, []) if net in p.org.networks]
                    pool = [p for p in ok if p.org.city is m.city] if local_only else ok
                    self._pracs[(key, net.id, m.city.name, local_only)] = pool
                if pool:
                    return pool[rng.randrange(len(pool))]
        for key in keys:
            if self.d.by_specialty.get(key):
                return self.d.by_specialty[key][rng.randrange(len(self.d.by_specialty[key]))]
        return self.d.practitioners[rng.randrange(len(self.d.practitioners))]

    def _org(self, kind: str, m: Member, rng: Random) -> Org:
        pool = self._orgs.get((kind, m.product.network.id, m.city.name))
        if pool is None:
            orgs = self.d.by_kind[kind]
            ok = [o for o in orgs if m.product.network in o.networks]
            local = [o for o in ok if o.city is m.city]
            pool = self._orgs[(kind, m.product.network.id, m.city.name)] = local or ok or orgs
        return pool[rng.randrange(len(pool))]

    def _day(self, rng: Random, lo: int = 0, hi: int | None = None) -> int:
        return self.start + rng.randrange(lo, (hi if hi is not None else self.last_visit_day - self.start))

    # --- the story ------------------------------------------------------------------------------------
    def plan(self, m: Member, rng: Random) -> Story:
        age = age_on(m.birth, self.start)
        band = 0 if age < 18 else 1 if age < 45 else 2 if age < 65 else 3
        forced = m.forced
        chronic: list[Chronic] = []
        forced_chronic = forced.chronic if forced else ()
        for row in C.CHRONIC:
            key, code, display, min_age, sex, prevalence = row
            if key in forced_chronic or (
                age >= min_age
                and (not sex or (sex == "F") == m.female)
                and rng.randrange(1000) < prevalence[band]
                and not forced
            ):
                onset = self.start - rng.randrange(60, max(61, min(age, 20) * 365))
                chronic.append(Chronic(key, code, display, max(onset, m.birth + 365)))
        keys = {c.key for c in chronic}
        allergies: list[tuple] = []
        if "peanut" in keys:
            allergies.append(C.PEANUT)
        if rng.random() < 0.3 or (forced and forced.allergies):
            allergies.append(C.ALLERGENS[rng.randrange(len(C.ALLERGENS))])
        smoking = ("266919005", "Never smoked tobacco (finding)")
        if age >= 18:
            smoking = rng.choices(
                (smoking, ("8517006", "Ex-smoker (finding)"), ("77176002", "Smoker (finding)")), (70, 18, 12)
            )[0]
        pcp_keys = ("peds", "fm") if age < 18 else ("im", "fm") if age >= 65 else ("fm", "im", "np")
        pcp = self._prac((pcp_keys[rng.randrange(len(pcp_keys))], *pcp_keys), m, rng)
        visits: list[Visit] = []
        rxs: list[Rx] = []
        self._chronic_visits(m, rng, age, chronic, pcp, visits, rxs)
        self._annual(m, rng, age, keys, pcp, visits)
        penicillin = any(a[1] in ("7980", "723") for a in allergies)
        self._acute(m, rng, age, pcp, visits, rxs, penicillin)
        self._facility(m, rng, age, keys, pcp, visits, rxs)
        self._dental(m, rng, age, visits)
        visits.sort(key=lambda v: (v.start, v.hhmm, v.kind))
        for i, v in enumerate(visits, start=1):
            v.seq = i
            for rx in v.rxs:
                rx.encounter_seq = i
        rxs.sort(key=lambda r: (r.authored, r.drug.key))
        fills: list[Fill] = []
        pharmacy = self._org("pharmacy", m, rng)
        end = self.start + 364
        for i, rx in enumerate(rxs, start=1):
            rx.seq = i
            day = max(rx.authored, self.start) + rng.randrange(0, 3)
            for n in range(rx.refills + 1):
                if day > end - 25:
                    break
                fills.append(Fill(rx, day, n, pharmacy))
                day += rx.days - rng.randrange(0, 4)
        fills.sort(key=lambda f: (f.date, f.rx.seq))
        return Story(m, age, chronic, allergies, smoking, pcp, visits, rxs, fills)

    def _rx(self, drug: Drug, prac: Practitioner, day: int, reason: tuple[str, str], rng: Random) -> Rx:
        if drug.chronic:
            mail = drug.units_30 > 1 and drug.unit in ("tablet", "capsule") and rng.random() < 0.25
            days = 90 if mail else 30
            qty = drug.units_30 * (3 if mail else 1)
            refills = 3 if mail else 11
            if drug.key in ("medroxyprogesterone",):
                days, qty, refills, mail = 90, 1, 3, False
            elif drug.key == "epinephrine":
                days, qty, refills, mail = 365, 1, 0, False
        else:
            mail, days, qty, refills = (
                False,
                {"azithromycin250": 5, "oseltamivir75": 5}.get(drug.key, 10),
                drug.units_30,
                0,
            )
            if drug.key == "fluconazole150":
                days = 1
        return Rx(drug, prac, day, reason, drug.chronic, mail, days, qty, refills)

    def _chronic_visits(
        self,
        m: Member,
        rng: Random,
        age: int,
        chronic: list[Chronic],
        pcp: Practitioner,
        visits: list[Visit],
        rxs: list[Rx],
    ) -> None:
        if not chronic:
            return
        # maintenance drugs, written before the plan year by the PCP (refilled through the year)
        for c in chronic:
            options = [k for k in DRUG_FOR.get(c.key, ()) if k in DRUGS_BY_KEY]
            if not options or (c.key in ("rhinitis", "back_pain", "obesity") and rng.random() < 0.6):
                continue
            n = 2 if c.key in ("t2dm", "asthma", "htn", "copd", "chf", "afib") and rng.random() < 0.45 else 1
            for key in options[:1] + rng.sample(options[1:], min(n - 1, len(options) - 1)):
                if any(r.drug.key == key for r in rxs):
                    continue
                rxs.append(
                    self._rx(
                        DRUGS_BY_KEY[key], pcp, self.start - rng.randrange(5, 60), (c.code, c.display), rng
                    )
                )
        for _ in range(2 + min(5, len(chronic)) + rng.randrange(0, 3)):
            c = chronic[rng.randrange(len(chronic))]
            spec = SPECIALIST_FOR.get(c.key)
            prac = self._prac((spec,), m, rng) if spec and rng.random() < 0.5 else pcp
            day = self._day(rng)
            kind = "therapy" if prac.specialty[0] in ("psychologist", "pt") else "office"
            dx = [(c.code, c.display), *[(o.code, o.display) for o in chronic if o is not c][:2]]
            v = Visit(
                kind,
                day,
                day,
                HOURS[rng.randrange(len(HOURS))],
                prac,
                prac.org,
                dx,
                referrer=pcp if prac is not pcp else None,
            )
            if kind == "therapy":
                v.lines.append((C.CPT, "90834" if prac.specialty[0] == "psychologist" else "97110", ""))
            else:
                v.lines.append((C.CPT, "99214" if len(dx) > 1 else "99213", ""))
                if c.key == "t2dm":
                    v.labs.append("a1c")
                elif c.key in ("ckd3", "chf") or (c.key == "htn" and rng.random() < 0.5):
                    v.labs.append("bmp")
                elif c.key == "hld" and rng.random() < 0.4:
                    v.labs.append("lipid")
                elif c.key == "hypothyroid" and rng.random() < 0.5:
                    v.labs.append("tsh")
            visits.append(v)

    def _annual(
        self, m: Member, rng: Random, age: int, keys: set[str], pcp: Practitioner, visits: list[Visit]
    ) -> None:
        if not (m.forced or rng.random() < 0.8):
            return
        day = self._day(rng)
        dx = C.WELL_CHILD if age < 18 else C.WELL_ADULT_ABN if keys - {"peanut"} else C.WELL_ADULT
        v = Visit("annual", day, day, HOURS[rng.randrange(len(HOURS))], pcp, pcp.org, [dx])
        if m.product.medicare:
            code = "G0439"
        else:
            code = ("99391", "99392", "99393", "99394", "99395", "99396", "99397")[
                0
                if age < 1
                else 1
                if age < 5
                else 2
                if age < 12
                else 3
                if age < 18
                else 4
                if age < 40
                else 5
                if age < 65
                else 6
            ]
        v.lines.append((C.HCPCS if code.startswith("G") else C.CPT, code, ""))
        if age >= 18:
            v.labs += ["bmp", "cbc"] + (["lipid"] if age >= 20 else [])
            v.labs += ["a1c"] if "t2dm" in keys else []
            v.labs += ["tsh"] if "hypothyroid" in keys else []
        for key, (_cvx, _d, _cpt, lo, hi) in C.VACCINES.items():
            if not lo <= age <= hi or key.startswith("flu"):
                continue
            p = {"tdap": 0.08, "zoster": 0.25, "pcv20": 0.3, "hpv": 0.3}.get(key, 0.6)
            if age < 18 and key == "tdap":
                p = 0.5 if 11 <= age <= 12 else 0.0
            if rng.random() < p:
                v.vaccines.append(key)
        visits.append(v)
        if age < 3:  # infants and toddlers: more well-child checks in the year
            for extra in (1, 2):
                wday = self._day(rng)
                w = Visit("annual", wday, wday, HOURS[rng.randrange(len(HOURS))], pcp, pcp.org, [dx])
                w.lines.append((C.CPT, code, ""))
                if extra == 1 and rng.random() < 0.7:
                    w.vaccines.append("dtap")
                visits.append(w)
        if rng.random() < 0.6 or m.forced:  # a flu shot in the fall, at the PCP office
            fday = self._day(rng, 270, 330)
            f = Visit(
                "immunization",
                fday,
                fday,
                HOURS[rng.randrange(len(HOURS))],
                pcp,
                pcp.org,
                [C.IMMUNIZATION_DX],
                vaccines=["flu_hd" if age >= 65 else "flu"],
            )
            visits.append(f)

    def _acute(
        self,
        m: Member,
        rng: Random,
        age: int,
        pcp: Practitioner,
        visits: list[Visit],
        rxs: list[Rx],
        penicillin_allergy: bool,
    ) -> None:
        n = rng.choices((0, 1, 2, 3, 4, 5), (20, 27, 25, 14, 9, 5))[0] + (
            rng.randrange(0, 3) if age < 6 else 0
        )
        for _ in range(n):
            for _try in range(5):
                code, display, min_age, _w, em, drug_key = rng.choices(C.ACUTE, ACUTE_WEIGHTS)[0]
                if age >= min_age:
                    break
            day = self._day(rng)
            prac = pcp if rng.random() < 0.7 else self._prac(("np", "fm"), m, rng)
            v = Visit("acute", day, day, HOURS[rng.randrange(len(HOURS))], prac, prac.org, [(code, display)])
            v.lines.append((C.CPT, em, ""))
            test = {"J02.0": "87880", "J02.9": "87880", "J11.1": "87804", "N39.0": "81003"}.get(code)
            if test:
                v.lines.append((C.CPT, test, ""))
            if drug_key == "amoxicillin500" and penicillin_allergy:
                drug_key = "azithromycin250"  # never a penicillin for a member allergic to it
            if drug_key:
                rx = self._rx(DRUGS_BY_KEY[drug_key], prac, day, (code, display), rng)
                v.rxs.append(rx)
                rxs.append(rx)
            visits.append(v)

    def _facility(
        self,
        m: Member,
        rng: Random,
        age: int,
        keys: set[str],
        pcp: Practitioner,
        visits: list[Visit],
        rxs: list[Rx],
    ) -> None:
        forced = m.forced
        outpatient = {row[0]: row for row in C.OUTPATIENT}
        wanted: list[tuple] = []
        if forced and forced.outpatient:
            wanted.append(outpatient[forced.outpatient])
        elif not forced:
            if rng.random() < (0.08 if age < 65 else 0.16):
                wanted.append(outpatient[("er_chest", "er_ankle", "er_abdomen")[rng.randrange(3)]])
            if 45 <= age <= 75 and rng.random() < 0.1:
                wanted.append(outpatient["colonoscopy"])
            if m.female and age >= 40 and rng.random() < 0.5:
                wanted.append(outpatient["mammogram"])
            if "oa_knee" in keys and rng.random() < 0.3:
                wanted.append(outpatient["knee_mri"])
        hospital = self._org("hospital", m, rng)
        for row in wanted:
            key, dx, _lines, prof, _pos = row
            spec = {"colonoscopy": "gi", "mammogram": "rad", "knee_mri": "rad"}.get(key, "em")
            prac = self._prac((spec,), m, rng)
            day = self._day(rng)
            v = Visit(
                "er" if key.startswith("er") else "outpatient",
                day,
                day,
                HOURS[rng.randrange(len(HOURS))],
                prac,
                hospital,
                [dx],
                scenario=row,
                referrer=None if key.startswith("er") else pcp,
            )
            v.lines = [(C.CPT, cpt, mod) for cpt, mod in prof]
            visits.append(v)
        stays = [r for r in C.INPATIENT if age >= r[8] and (not r[9] or (r[9] == "F") == m.female)]
        stays = [
            r
            for r in stays
            if r[0] not in ("knee", "chf", "copd") or r[0] in keys or (r[0] == "knee" and "oa_knee" in keys)
        ]
        if forced and forced.inpatient:
            chosen = [next(s for s in C.INPATIENT if s[0] == forced.inpatient)]
        elif forced:
            chosen = []
        else:
            p = (0.01, 0.03, 0.05, 0.12)[0 if age < 18 else 1 if age < 45 else 2 if age < 65 else 3]
            if m.female and 20 <= age <= 40:
                p += 0.05
            chosen = [stays[rng.randrange(len(stays))]] if stays and rng.random() < p else []
        for row in chosen:
            key, _drg, _t, dx, _pcs, los, _adm, _rev, _a, _s, surgeon_cpt = row
            attending = self._prac(("hosp",), m, rng)
            surgeon = (
                self._prac(
                    ("obgyn",) if key == "delivery" else ("ortho",) if key == "knee" else ("surg",), m, rng
                )
                if surgeon_cpt
                else None
            )
            day = self._day(rng, 0, 300)
            v = Visit(
                "inpatient",
                day,
                day + rng.randrange(los[0], los[1] + 1),
                HOURS[rng.randrange(len(HOURS))],
                attending,
                hospital,
                [dx],
                scenario=row,
                surgeon=surgeon,
                referrer=pcp,
            )
            v.lines = [(C.CPT, "99223", ""), (C.CPT, "99238", "")]
            if surgeon_cpt:
                rx = self._rx(DRUGS_BY_KEY["oxycodoneapap"], surgeon or attending, v.end, dx, rng)
                v.rxs.append(rx)
                rxs.append(rx)
            v.labs.append("cbc")
            visits.append(v)

    def _dental(self, m: Member, rng: Random, age: int, visits: list[Visit]) -> None:
        if not (m.forced or rng.random() < 0.7):
            return
        dentist = self._prac(("dentist",), m, rng)
        first = self._day(rng, 0, 150)
        for n, day in enumerate((first, first + 180 + rng.randrange(0, 20))):
            exam = "D0150" if n == 0 and rng.random() < 0.2 else "D0120"
            teeth = [(exam, ""), ("D1120" if age < 14 else "D1110", "")]
            if n == 0 and age >= 6:
                teeth.append(("D0274" if age >= 12 else "D0272", ""))
            if age < 14:
                teeth.append(("D1208", ""))
            dx = [C.DENTAL_DX]
            if n == 1 and rng.random() < 0.2:
                teeth.append(("D2391", str(rng.choice((3, 14, 19, 30)))))
                dx.append(C.CARIES_DX)
            visits.append(
                Visit(
                    "dental",
                    day,
                    day,
                    HOURS[rng.randrange(len(HOURS))],
                    dentist,
                    dentist.org,
                    dx,
                    teeth=teeth,
                )
            )
