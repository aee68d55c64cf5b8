"""Index extraction: evaluate each search parameter of a resource and turn its values into index rows.

The expressions are evaluated by :mod:`openpayer.fhir.search.fhirpath` (compiled extractors, fhirpathpy
for the rest); each item comes with its FHIR type and is converted by parameter type following FHIR R4
§3.1.1.5. See :mod:`openpayer.fhir.storage.index` for the row conventions. Rows are de-duplicated per
resource. Any error in one parameter is logged at debug level and that parameter yields no rows;
extraction never raises.
"""

from __future__ import annotations

import calendar
import logging
import re
import unicodedata
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

import orjson

from openpayer.fhir.search.extract_codegen import Entry, GeneratedExtraction, generate, members_of
from openpayer.fhir.search.fhirpath import (
    LOCAL_REFERENCE,
    R4_MODEL,
    Node,
    compile_expression,
    is_compiled,
    reference_type,
    resolves_to,
    rooted,
    rooted_branches,
    top_keys,
)
from openpayer.fhir.search.registry import (
    SearchParamRegistry,
    concrete_resource_types,
    default_registry,
)
from openpayer.fhir.storage.index import (
    DateValue,
    IndexRows,
    NumberValue,
    QuantityValue,
    ReferenceValue,
    SpecialValue,
    StringValue,
    TokenValue,
    UriValue,
)

__all__ = ["compile_expression", "date_range", "extract_index", "is_compiled", "normalize_string"]

log = logging.getLogger(__name__)

MIN_MICROS = -62135596800000000  # 0001-01-01T00:00:00.000000Z
MAX_MICROS = 253402300799999999  # 9999-12-31T23:59:59.999999Z
ISO_4217 = "urn:iso:std:iso:4217"
STRING_MAX, NORMALIZED_MAX = 512, 255
ROW_ATTRIBUTES = ("strings", "tokens", "dates", "numbers", "quantities", "references", "uris", "specials")

# --- values to rows ---------------------------------------------------------------------------------------


def _fhir_type(path: str | None) -> str | None:
    """The FHIR type of a node, or None for backbone elements and unknown paths."""
    if path is None:
        return None
    if path.startswith("System."):
        return "string"
    return None if "." in path else path


_FHIR_TYPES: dict[str | None, str | None] = {}  # memo of _fhir_type


def _extension_value(extension: Any) -> tuple[Any, str | None]:
    """An Extension selected as a whole stands for its ``value[x]``.

    Plan-Net's ``Organization-coverage-area`` and ``PractitionerRole-network`` select the extension, not its
    ``.value``; indexing the value is what their descriptions (and the Inferno Plan-Net tests) expect.
    """
    if isinstance(extension, dict):
        for key, value in extension.items():
            if key.startswith("value") and len(key) > 5:
                return value, _fhir_type(R4_MODEL["path2Type"].get(f"Extension.{key}"))
    return None, None


def normalize_string(value: str) -> str:
    """Lower-case, accents removed (NFKD, combining marks dropped), whitespace collapsed, at most 255."""
    if not value.isascii():
        value = "".join(c for c in unicodedata.normalize("NFKD", value) if not unicodedata.combining(c))
    return " ".join(value.lower().split())[:NORMALIZED_MAX]


_DATE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?",
    re.ASCII,
)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@lru_cache(maxsize=16384)
def date_range(value: str) -> tuple[int, int] | None:
    """The [low, high] microseconds a FHIR date, dateTime or instant covers, or None when malformed.

    Partial precision is the whole period (``2020`` is all of 2020); a value without a time zone (a date,
    or a dateTime written without one) is taken as UTC.
    """
    match = _DATE.fullmatch(value.strip())
    if match is None:
        return None
    y, mo, d, hh, mi, ss, frac, tz = match.groups()
    year = int(y)
    if year == 0:
        return None
    month_lo, month_hi = (int(mo), int(mo)) if mo else (1, 12)
    if not 1 <= month_lo <= 12:
        return None
    last_day = calendar.monthrange(year, month_hi)[1]
    day_lo, day_hi = (int(d), int(d)) if d else (1, last_day)
    if not 1 <= day_lo <= last_day:
        return None
    if hh is None:
        sec_lo, sec_hi, us_lo, us_hi = 0, 86399, 0, 999999
    else:
        base = int(hh) * 3600 + int(mi) * 60
        if int(hh) > 23 or int(mi) > 59 or (ss and int(ss) > 59):
            return None
        sec_lo, sec_hi = (base + int(ss), base + int(ss)) if ss else (base, base + 59)
        digits = (frac or "")[:6]
        us_lo = int(digits.ljust(6, "0")) if digits else 0
        us_hi = us_lo + 10 ** (6 - len(digits)) - 1
    offset = 0
    if tz and tz != "Z":
        offset = (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60) * (-1 if tz[0] == "-" else 1)
    day0 = (date(year, month_lo, day_lo).toordinal() - _EPOCH_ORDINAL) * 86400
    day1 = (date(year, month_hi, day_hi).toordinal() - _EPOCH_ORDINAL) * 86400
    low = (day0 + sec_lo - offset) * 1_000_000 + us_lo
    high = (day1 + sec_hi - offset) * 1_000_000 + us_hi
    return min(max(low, MIN_MICROS), MAX_MICROS), min(max(high, MIN_MICROS), MAX_MICROS)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    return float(value)


def _text(value: Any) -> str | None:
    return (normalize_string(value) or None) if isinstance(value, str) and value else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


_NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
_ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")
_CONTACT_SYSTEMS = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})
_QUANTITY_TYPES = frozenset(
    {"Quantity", "Age", "Duration", "Distance", "Count", "SimpleQuantity", "MoneyQuantity"}
)


def _strings(code: str, value: Any, ftype: str | None, out: list[StringValue]) -> None:
    if isinstance(value, str):
        if value.strip():
            out.append(StringValue(code, value[:STRING_MAX], normalize_string(value)))
        return
    if not isinstance(value, dict):
        return
    if ftype == "HumanName" or (ftype is None and any(k in value for k in _NAME_PARTS[:4])):
        parts: tuple[str, ...] = _NAME_PARTS
    elif ftype == "Address" or (ftype is None and any(k in value for k in _ADDRESS_PARTS[:6])):
        parts = _ADDRESS_PARTS
    elif ftype is None and "text" in value:
        parts = ("text",)
    else:
        return
    for part in parts:
        item = value.get(part)
        for text in item if isinstance(item, list) else (item,):
            if isinstance(text, str):
                _strings(code, text, "string", out)


def _coding_row(code: str, coding: Any, text: str | None) -> TokenValue | None:
    if not isinstance(coding, dict):
        return None
    system, value = _str(coding.get("system")), _str(coding.get("code"))
    text = text or _text(coding.get("display"))
    return TokenValue(code, system, value, text) if system or value or text else None


def _concept_tokens(code: str, value: dict[str, Any], out: list[TokenValue]) -> None:
    """The rows of a CodeableConcept: one per Coding, and its text (and the Codings' displays) for :text."""
    cc_text = _text(value.get("text"))
    codings = [c for c in value.get("coding", ()) if isinstance(c, dict)]
    for coding in codings:
        row = _coding_row(code, coding, cc_text)
        if row:
            out.append(row)
        display = _text(coding.get("display"))
        if cc_text and display and display != cc_text:
            out.append(TokenValue(code, None, None, display))  # keep Coding.display searchable by :text
    if cc_text and not codings:
        out.append(TokenValue(code, None, None, cc_text))


# Rows are immutable: the common ones are made once per parameter and value and shared (a claims load names
# the same dates, patients, coverages, insurers and providers in resource after resource). Values longer
# than this are not kept.
_CACHED_LENGTH = 256

# A CodeableConcept's rows, by parameter and JSON text: the same concepts come again and again (a claim's
# type, an Observation's code and category): ~0.6 µs to look up against ~3.4 µs to make.
_CONCEPT_ROWS: dict[tuple[str, bytes], tuple[TokenValue, ...]] = {}
_CONCEPTS_KEPT = 16384  # then forgotten all at once
_CONCEPT_TEXT = 4 * _CACHED_LENGTH  # a concept's JSON text longer than this is not kept


def _tokens(code: str, value: Any, ftype: str | None, out: list[TokenValue]) -> None:
    if isinstance(value, bool):
        out.append(TokenValue(code, None, "true" if value else "false"))
        return
    if isinstance(value, str):
        if value:
            out.append(TokenValue(code, None, value))
        return
    if isinstance(value, int):
        out.append(TokenValue(code, None, str(value)))
        return
    if not isinstance(value, dict):
        return
    if ftype is None:
        if "coding" in value or set(value) <= {"text", "id", "extension"}:
            ftype = "CodeableConcept"
        elif "code" in value or "display" in value:
            ftype = "Coding"
        elif "value" in value:
            contact = (
                value.get("system") in _CONTACT_SYSTEMS or "rank" in value or value.get("use") == "mobile"
            )
            ftype = "ContactPoint" if contact else "Identifier"
    if ftype == "CodeableConcept":
        try:
            key = orjson.dumps(value)
        except TypeError:  # not JSON (a value fhirpathpy made): not kept
            _concept_tokens(code, value, out)
            return
        rows = _CONCEPT_ROWS.get((code, key))
        if rows is None:
            found: list[TokenValue] = []
            _concept_tokens(code, value, found)
            rows = tuple(found)
            if len(key) <= _CONCEPT_TEXT:
                if len(_CONCEPT_ROWS) >= _CONCEPTS_KEPT:
                    _CONCEPT_ROWS.clear()
                _CONCEPT_ROWS[(code, key)] = rows
        out.extend(rows)
    elif ftype == "Coding":
        row = _coding_row(code, value, None)
        if row:
            out.append(row)
    elif ftype == "Identifier":
        system, ident = _str(value.get("system")), _str(value.get("value"))
        id_type = value.get("type")
        if system or ident:
            type_text = _text(id_type.get("text")) if isinstance(id_type, dict) else None
            out.append(TokenValue(code, system, ident, type_text))
        if ident and isinstance(id_type, dict):
            for coding in id_type.get("coding", ()):
                type_code = _str(coding.get("code")) if isinstance(coding, dict) else None
                if type_code:
                    out.append(
                        TokenValue(f"{code}|of-type", _str(coding.get("system")), f"{type_code}|{ident}")
                    )
    elif ftype == "ContactPoint":
        contact = _str(value.get("value"))
        if contact:
            out.append(TokenValue(code, None, contact))


def _date_value(code: str, value: str) -> DateValue | None:
    """The row of a date, dateTime or instant."""
    span = date_range(value)
    return DateValue(code, *span) if span else None


_date_row = lru_cache(maxsize=16384)(_date_value)


def _dates(code: str, value: Any, ftype: str | None, out: list[DateValue]) -> None:
    if isinstance(value, str):
        row = _date_row(code, value) if len(value) <= _CACHED_LENGTH else _date_value(code, value)
        if row is not None:
            out.append(row)
        return
    if not isinstance(value, dict):
        return
    if ftype == "Period" or (ftype is None and ("start" in value or "end" in value)):
        start, end = value.get("start"), value.get("end")
        low = date_range(start) if isinstance(start, str) else None
        high = date_range(end) if isinstance(end, str) else None
        if low or high:
            out.append(DateValue(code, low[0] if low else MIN_MICROS, high[1] if high else MAX_MICROS))
    elif ftype == "Timing" or (ftype is None and ("event" in value or "repeat" in value)):
        # R4 §3.1.1.5.8: for a Timing "only the outer limits matter".
        spans = [date_range(e) for e in value.get("event", ()) if isinstance(e, str)]
        bounds = (value.get("repeat") or {}).get("boundsPeriod")
        if isinstance(bounds, dict):
            for key, pick in (("start", 0), ("end", 1)):
                span = date_range(bounds[key]) if isinstance(bounds.get(key), str) else None
                if span:
                    spans.append((span[pick], span[pick]))
        valid = [s for s in spans if s]
        if valid:
            out.append(DateValue(code, min(s[0] for s in valid), max(s[1] for s in valid)))


def _numbers(code: str, value: Any, ftype: str | None, out: list[NumberValue]) -> None:
    number = _number(value)
    if number is not None:
        out.append(NumberValue(code, number))
    elif isinstance(value, dict):
        # A Range indexes both ends; a Quantity its value.
        items = [value.get("low"), value.get("high")] if "low" in value or "high" in value else [value]
        for item in items:
            number = _number(item.get("value")) if isinstance(item, dict) else None
            if number is not None:
                out.append(NumberValue(code, number))


def _quantities(code: str, value: Any, ftype: str | None, out: list[QuantityValue]) -> None:
    if not isinstance(value, dict):
        return
    if ftype == "Range" or (ftype is None and ("low" in value or "high" in value)):
        for end in (value.get("low"), value.get("high")):
            if isinstance(end, dict):
                _quantities(code, end, "Quantity", out)
        return
    number = _number(value.get("value"))
    if number is None:
        return
    if ftype == "Money" or (ftype is None and "currency" in value):
        currency = _str(value.get("currency"))
        out.append(QuantityValue(code, number, ISO_4217 if currency else None, currency, None))
    elif ftype in _QUANTITY_TYPES or ftype is None:
        out.append(
            QuantityValue(
                code, number, _str(value.get("system")), _str(value.get("code")), _str(value.get("unit"))
            )
        )


def _references(code: str, value: Any, ftype: str | None, out: list[ReferenceValue]) -> None:
    if isinstance(value, str):  # canonical, uri, url
        if value:
            out.append(ReferenceValue(code, None, None, value))
        return
    if not isinstance(value, dict):
        return
    if "resourceType" in value:  # a resource in place of a reference (Bundle.entry[0].resource)
        rid = _str(value.get("id"))
        if rid:
            out.append(ReferenceValue(code, value["resourceType"], rid, None))
        return
    literal = value.get("reference")
    identifier = value.get("identifier")
    if identifier is None and literal.__class__ is str and len(literal) <= _CACHED_LENGTH:  # the common case
        row = _literal_row(code, literal)
        if row is not None:
            out.append(row)
        return
    target_type = target_id = url = None
    if isinstance(literal, str) and literal and literal[0] != "#":
        target_type, target_id, url = _literal_parts(literal)
    id_system = id_value = None
    if isinstance(identifier, dict):
        id_system, id_value = _str(identifier.get("system")), _str(identifier.get("value"))
        if target_type is None and url is None and (id_system or id_value):
            target_type = reference_type({"type": value.get("type")})
    if target_type or url or id_system or id_value:
        out.append(ReferenceValue(code, target_type, target_id, url, id_system, id_value))


def _literal_parts(literal: str) -> tuple[str | None, str | None, str | None]:
    """(target type, target id, url) of a non-empty literal reference that is not "#..."."""
    local = LOCAL_REFERENCE.fullmatch(literal)
    if local and local.group(1) in concrete_resource_types():
        return local.group(1), local.group(2), None
    if "://" in literal or literal.startswith("urn:"):
        return None, None, literal
    return None, None, None  # a conditional reference ("Patient?identifier=...") left unresolved: not indexed


# Made once per parameter and literal (see `_CACHED_LENGTH`): 2.7 → ~0.4 µs for a reference.
@lru_cache(maxsize=16384)
def _literal_row(code: str, literal: str) -> ReferenceValue | None:
    """The row of a reference with a literal and no identifier, or None if it indexes nothing."""
    if not literal or literal[0] == "#":
        return None
    target_type, target_id, url = _literal_parts(literal)
    if target_type or url:
        return ReferenceValue(code, target_type, target_id, url)
    return None


def _uris(code: str, value: Any, ftype: str | None, out: list[UriValue]) -> None:
    if isinstance(value, str) and value:
        out.append(UriValue(code, value))


def _specials(code: str, value: Any, ftype: str | None, out: list[SpecialValue]) -> None:
    if isinstance(value, dict):
        lat, lon = _number(value.get("latitude")), _number(value.get("longitude"))
        if lat is not None and lon is not None:
            out.append(SpecialValue(code, lat, lon))


# parameter type -> (converter, IndexRows attribute)
_CONVERTERS: dict[str, tuple[Callable[[str, Any, str | None, Any], None], str]] = {
    "string": (_strings, "strings"),
    "token": (_tokens, "tokens"),
    "date": (_dates, "dates"),
    "number": (_numbers, "numbers"),
    "quantity": (_quantities, "quantities"),
    "reference": (_references, "references"),
    "uri": (_uris, "uris"),
    "special": (_specials, "specials"),
}


# --- extraction -------------------------------------------------------------------------------------------

# Searched on the resource row itself (`fhir_resource.id`, `last_updated`; search/params.py `_lookup`), never
# on index rows: two rows fewer per resource written (a tenth of an ExplanationOfBenefit's).
ROW_PARAMETERS = frozenset({"_id", "_lastUpdated"})

# Whether `_plan` generates a function per resource type (`extract_codegen`); off, the plan loop alone
# extracts (the tests compare the two).
GENERATE = True


# The common case of four converters, which the generated extraction writes in place of their call (see
# `extract_codegen.generate`); each must give what its converter gives: a date string, a reference with a
# short literal and no identifier, a token or a uri that is a string.
_INLINE = {
    "dates": (
        f"if type({{value}}) is str and len({{value}}) <= {_CACHED_LENGTH}:\n"
        "    row = date_row({code}, {value})\n"
        "    if row is not None:\n"
        "        {out}.append(row)\n"
        "else:\n"
        "    {convert}({code}, {value}, {ftype}, {out})"
    ),
    "references": (
        "lit = {value}.get('reference') if type({value}) is dict else None\n"
        f"if lit.__class__ is str and len(lit) <= {_CACHED_LENGTH} and {{value}}.get('identifier') is None"
        " and 'resourceType' not in {value}:\n"
        "    row = literal_row({code}, lit)\n"
        "    if row is not None:\n"
        "        {out}.append(row)\n"
        "else:\n"
        "    {convert}({code}, {value}, {ftype}, {out})"
    ),
    "tokens": (
        "if type({value}) is str:\n"
        "    if {value}:\n"
        "        {out}.append(TokenValue({code}, None, {value}))\n"
        "else:\n"
        "    {convert}({code}, {value}, {ftype}, {out})"
    ),
    "uris": (
        "if type({value}) is str:\n"
        "    if {value}:\n"
        "        {out}.append(UriValue({code}, {value}))\n"
        "else:\n"
        "    {convert}({code}, {value}, {ftype}, {out})"
    ),
}
_HELPERS = {
    "resolves_to": resolves_to,
    "date_row": _date_row,
    "literal_row": _literal_row,
    "TokenValue": TokenValue,
    "UriValue": UriValue,
}


@dataclass(frozen=True, slots=True)
class _Plan:
    entries: list[Entry]
    generated: GeneratedExtraction | None


_PLANS: weakref.WeakKeyDictionary[SearchParamRegistry, dict[tuple[str, bool], _Plan]] = (
    weakref.WeakKeyDictionary()
)


def _type_of(path: str | None) -> str | None:
    """`_fhir_type`, remembered in `_FHIR_TYPES`."""
    ftype = _FHIR_TYPES[path] = _fhir_type(path)
    return ftype


def _plan(registry: SearchParamRegistry, resource_type: str, force_fhirpathpy: bool) -> _Plan:
    plans = _PLANS.setdefault(registry, {})
    key = (resource_type, force_fhirpathpy)
    plan = plans.get(key)
    if plan is None:
        entries = []
        for param in registry.for_type(resource_type).values():
            if param.type not in _CONVERTERS or not param.expression:
                continue  # composite parameters are answered from their components' values
            if param.code in ROW_PARAMETERS:
                continue
            try:
                extractor = compile_expression(param.expression, force_fhirpathpy=force_fhirpathpy)
            except Exception:  # a definition fhirpathpy cannot parse indexes nothing
                log.debug(
                    "cannot compile %s %s: %r", resource_type, param.code, param.expression, exc_info=True
                )
                continue
            steps = None if force_fhirpathpy else rooted(extractor, resource_type)
            convert, attribute = _CONVERTERS[param.type]
            members = None
            if steps is not None and GENERATE:
                branches = rooted_branches(extractor, resource_type)
                members = members_of(branches, resource_type, _fhir_type)
            entries.append(
                Entry(
                    param.code,
                    attribute,
                    convert,
                    extractor if steps is None else steps,
                    steps is not None,
                    top_keys(extractor),
                    members,
                )
            )
        generated = None
        if GENERATE and not force_fhirpathpy:
            generated = generate(
                resource_type,
                entries,
                types_get=_FHIR_TYPES.get,
                type_of=_type_of,
                extension_value=_extension_value,
                inline=_INLINE,
                helpers=_HELPERS,
            )
        plan = plans[key] = _Plan(entries, generated)
    return plan


def extract_index(
    resource: dict, registry: SearchParamRegistry | None = None, *, force_fhirpathpy: bool = False
) -> IndexRows:
    """The de-duplicated index rows of ``resource`` for every search parameter of its type."""
    resource_type = resource.get("resourceType") if isinstance(resource, dict) else None
    if not isinstance(resource_type, str):
        return IndexRows()
    registry = default_registry() if registry is None else registry
    plan = _plan(registry, resource_type, force_fhirpathpy)
    root: list[Node] = [(resource, resource_type)]
    keys = resource.keys()  # a view's isdisjoint walks the smaller side (a frozenset's walks the dict)
    rows = None
    if plan.generated is not None:
        lists: tuple[list[Any], ...] = ([], [], [], [], [], [], [], [])
        try:
            plan.generated(resource, root, keys, *lists)
        except Exception:  # the plan loop below confines the error to its parameter
            log.debug("generated extraction of %s failed", resource_type, exc_info=True)
        else:
            rows = IndexRows(*lists)
    if rows is None:
        rows = _plan_loop(plan.entries, resource_type, resource, root, keys)
    for attribute in ROW_ATTRIBUTES:
        values = getattr(rows, attribute)
        if len(values) > 1:
            setattr(rows, attribute, list(dict.fromkeys(values)))
    return rows


def _plan_loop(
    entries: list[Entry], resource_type: str, resource: dict, root: list[Node], keys: Any
) -> IndexRows:
    rows = IndexRows()
    for entry in entries:
        if entry.needs is not None and keys.isdisjoint(entry.needs):
            continue  # none of the properties its expression starts with: no values
        found: list[Any] = []
        try:
            for value, path in entry.extractor(root) if entry.is_steps else entry.extractor(resource):
                ftype = _FHIR_TYPES.get(path, "")
                if ftype == "":
                    ftype = _type_of(path)
                if ftype == "Extension":
                    value, ftype = _extension_value(value)
                entry.convert(entry.code, value, ftype, found)
        except Exception:
            log.debug("extraction of %s %s failed", resource_type, entry.code, exc_info=True)
            continue
        if found:
            getattr(rows, entry.attribute).extend(found)
    return rows
