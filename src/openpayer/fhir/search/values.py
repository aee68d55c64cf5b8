"""Parsing of search parameter *values* (FHIR R4 §3.1.1.4–5): escaping, prefixes, dates, numbers, tokens.

Everything here is pure: text in, typed values out, `BadRequest` for malformed input.
"""

from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from openpayer.fhir.errors import BadRequest
from openpayer.fhir.search.extract import normalize_string as _normalize

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROS = 1_000_000


# ---- escaping (§3.1.1.4.8 "Escaping Search Parameters") -------------------------------------------------


def split_escaped(text: str, sep: str) -> list[str]:
    """Split on `sep` where it is not escaped by a backslash; escapes are kept for later splits."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def unescape(text: str) -> str:
    return re.sub(r"\\([,|$\\])", r"\1", text)


def escape(text: str) -> str:
    return re.sub(r"([,|$\\])", r"\\\1", text)


# ---- strings ----------------------------------------------------------------------------------------------


def normalize_string(text: str) -> str:
    """The form stored in `fhir_idx_string.value_norm` (lower-cased, accents stripped, whitespace folded)."""
    return _normalize(text)


def like_escape(text: str) -> str:
    """Escape LIKE wildcards; use with `escape="\\\\"`."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# ---- prefixes ----------------------------------------------------------------------------------------------


def split_prefix(text: str) -> tuple[str, str]:
    if len(text) > 2 and text[:2] in PREFIXES and (text[2].isdigit() or text[2] in "-+."):
        return text[:2], text[2:]
    return "eq", text


# ---- dates ----------------------------------------------------------------------------------------------

_DATE_RE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2})(?::(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d{1,9}))?)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


def to_micros(dt: datetime) -> int:
    delta = dt - _EPOCH
    return (delta.days * 86400 + delta.seconds) * MICROS + delta.microseconds


def date_range(text: str) -> tuple[int, int]:
    """The [low, high] microsecond range (both inclusive) a search date covers at its precision.

    A date/time without a zone is taken as UTC (R4 lets the server choose; we store UTC too).
    """
    match = _DATE_RE.match(text)
    if match is None:
        raise BadRequest(f"Invalid date/time search value: {text!r}")
    g = match.groupdict()
    try:
        year = int(g["y"])
        if g["tz"] and g["tz"] != "Z":
            sign = 1 if g["tz"][0] == "+" else -1
            hours, minutes = int(g["tz"][1:3]), int(g["tz"][4:6])
            tz: timezone = timezone(sign * timedelta(hours=hours, minutes=minutes))
        else:
            tz = UTC
        if g["m"] is None:
            start = datetime(year, 1, 1, tzinfo=tz)
            end = datetime(year + 1, 1, 1, tzinfo=tz)
        elif g["d"] is None:
            month = int(g["m"])
            start = datetime(year, month, 1, tzinfo=tz)
            end = start + timedelta(days=monthrange(year, month)[1])
        elif g["H"] is None:
            start = datetime(year, int(g["m"]), int(g["d"]), tzinfo=tz)
            end = start + timedelta(days=1)
        else:
            if g["M"] is None:
                raise BadRequest(f"Invalid date/time search value (hours need minutes): {text!r}")
            base = datetime(year, int(g["m"]), int(g["d"]), int(g["H"]), int(g["M"]), tzinfo=tz)
            if g["S"] is None:
                start, end = base, base + timedelta(minutes=1)
            else:
                start = base.replace(second=int(g["S"]))
                if g["f"] is None:
                    end = start + timedelta(seconds=1)
                else:
                    digits = g["f"][:6]
                    start = start.replace(microsecond=int(digits.ljust(6, "0")))
                    end = start + timedelta(microseconds=10 ** (6 - len(digits)))
    except ValueError as exc:
        raise BadRequest(f"Invalid date/time search value: {text!r}") from exc
    return to_micros(start), to_micros(end) - 1


# ---- numbers ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NumberSearch:
    prefix: str
    value: float
    low: float  # implicit precision range [low, high) (R4 §3.1.1.5.1)
    high: float


def parse_number(text: str, *, what: str = "number") -> NumberSearch:
    prefix, rest = split_prefix(text)
    try:
        dec = Decimal(rest)
    except InvalidOperation as exc:
        raise BadRequest(f"Invalid {what} search value: {text!r}") from exc
    if not dec.is_finite():
        raise BadRequest(f"Invalid {what} search value: {text!r}")
    exponent = dec.as_tuple().exponent
    assert isinstance(exponent, int)
    half = Decimal(5) * Decimal(10) ** (exponent - 1)
    return NumberSearch(prefix, float(dec), float(dec - half), float(dec + half))


# ---- tokens, quantities, references ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenSearch:
    system: str | None  # None: any system; "" : no system (`|code`)
    code: str | None  # None: any code (`system|`)


def parse_token(text: str) -> TokenSearch:
    parts = split_escaped(text, "|")
    if len(parts) == 1:
        return TokenSearch(None, unescape(parts[0]))
    if len(parts) != 2:
        raise BadRequest(f"Invalid token search value: {text!r}")
    system, code = unescape(parts[0]), unescape(parts[1])
    if not system and not code:
        raise BadRequest(f"Invalid token search value: {text!r}")
    return TokenSearch(system, code or None)


@dataclass(frozen=True, slots=True)
class QuantitySearch:
    number: NumberSearch
    system: str | None  # None: any
    code: str | None  # None: any; with system None it may match the unit as well (`value||unit`)


def parse_quantity(text: str) -> QuantitySearch:
    parts = [unescape(p) for p in split_escaped(text, "|")]
    if len(parts) not in (1, 3):
        raise BadRequest(f"Invalid quantity search value: {text!r}")
    number = parse_number(parts[0], what="quantity")
    if len(parts) == 1:
        return QuantitySearch(number, None, None)
    return QuantitySearch(number, parts[1] or None, parts[2] or None)


@dataclass(frozen=True, slots=True)
class ReferenceSearch:
    target_type: str | None
    target_id: str | None
    url: str | None  # an absolute (non-local) URL or canonical


_LOCAL_REF = re.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def parse_reference(text: str, base_url: str, type_modifier: str | None) -> ReferenceSearch:
    value = unescape(text)
    if type_modifier is not None:
        return ReferenceSearch(type_modifier, value.rsplit("/", 1)[-1], None)
    base = base_url.rstrip("/") + "/"
    if base_url and value.startswith(base):
        value = value[len(base) :]
    match = _LOCAL_REF.match(value)
    if match:
        return ReferenceSearch(match.group(1), match.group(2), None)
    if "/" not in value and ":" not in value:
        return ReferenceSearch(None, value, None)
    return ReferenceSearch(None, None, value)


# ---- near (Location) -------------------------------------------------------------------------------

_KM_PER_UNIT = {"km": 1.0, "m": 0.001, "mi": 1.609344, "[mi_i]": 1.609344, "mi_i": 1.609344}
DEFAULT_NEAR_KM = 50.0


@dataclass(frozen=True, slots=True)
class NearSearch:
    latitude: float
    longitude: float
    km: float


def parse_near(text: str) -> NearSearch:
    parts = [unescape(p) for p in split_escaped(text, "|")]
    if len(parts) < 2 or len(parts) > 4:
        raise BadRequest(f"Invalid near search value (lat|long[|distance[|unit]]): {text!r}")
    try:
        lat, lon = float(parts[0]), float(parts[1])
        distance = float(parts[2]) if len(parts) > 2 and parts[2] else None
    except ValueError as exc:
        raise BadRequest(f"Invalid near search value: {text!r}") from exc
    unit = parts[3] if len(parts) > 3 and parts[3] else "km"
    if unit not in _KM_PER_UNIT:
        raise BadRequest(f"Unsupported distance unit {unit!r} in near (use km, m or [mi_i])")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise BadRequest(f"Invalid coordinates in near: {text!r}")
    km = DEFAULT_NEAR_KM if distance is None else distance * _KM_PER_UNIT[unit]
    return NearSearch(lat, lon, km)
