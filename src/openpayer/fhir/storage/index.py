"""The index rows extracted from a resource for search: one small record per value per parameter.

Each record is a `NamedTuple` (immutable and hashable like the frozen dataclasses they were, at a third
of the cost to build and hash: a bulk load makes ~20 per resource). Like tuples they compare by value
only, so compare records of one kind (one `IndexRows` attribute) with each other.

This is the contract between extraction (registry + FHIRPath extractors) and storage (index tables).
Dates are stored as integer microseconds since the Unix epoch (UTC) so that SQLite and PostgreSQL compare
them identically; a FHIR date, dateTime, instant or Period becomes the range [low, high] it covers
(FHIR R4 §3.1.1.5.8: "the value is treated as an implicit range").

Conventions of `openpayer.fhir.search.extract` (FHIR R4 §3.1.1.5, per parameter type):

- Dates: partial precision covers the whole period ("2020" is 2020-01-01T00:00:00.000000Z through
  2020-12-31T23:59:59.999999Z; "…T10:00:00.5Z" covers .500000-.599999); offsets are honoured; a value
  without a time zone (a date, or a dateTime written without one) is taken as UTC. A Period with no start has
  low = -62135596800000000 (0001-01-01), with no end high = 253402300799999999 (9999-12-31T23:59:59.999999Z).
  A Timing is one range over its outer limits (events and repeat.boundsPeriod).
- Strings: one row per string, per HumanName part (family, each given, prefix, suffix, text) and per Address
  part (each line, city, district, state, postalCode, country, text).
- Tokens: `text` is always normalised like `StringValue.normalized`. A Coding gives (system, code, display);
  a CodeableConcept one row per coding with `text` = CodeableConcept.text (or the coding's display when the
  concept has no text), plus a text-only row (system and code None) for a display that differs from the
  concept's text, and a text-only row for a concept with text and no codings. An Identifier gives
  (system, value, type.text). A ContactPoint gives (None, value). code, id, string and uri values give
  (None, value); booleans give (None, "true"/"false").
- `:of-type` (Identifier only): for each Identifier with a value and each coding of Identifier.type, an extra
  TokenValue with `param` = "<code>|of-type", `system` = the type coding's system, `code` =
  "<type code>|<identifier value>". `identifier:of-type=S|C|V` is then `param = 'identifier|of-type' AND
  system = S AND code = 'C|V'`.
- References: a local `Type/id` (also with `/_history/n`, which is dropped) gives target_type/target_id; an
  absolute URL or `urn:uuid:`/`urn:oid:` gives `url` only, as written; a contained `#id` and an unresolved
  conditional reference give no literal part; Reference.identifier fills identifier_system/value (on the
  same row as the literal part, with target_type from Reference.type when there is no literal part). A
  canonical or uri selected by a reference parameter gives `url`.
- Quantities: Quantity and its profiles (Age, Duration, Distance, Count, SimpleQuantity) give
  (value, system, code, unit); Money gives (value, "urn:iso:std:iso:4217", currency, None); a Range gives its
  low and high as two rows (a range-to-range comparison cannot be expressed with one value). A number
  parameter over a Range indexes low and high the same way.
- Composite parameters have no rows of their own: the query builder combines their components' rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class StringValue(NamedTuple):
    param: str
    value: str  # as written (truncated to 512); `:exact` compares against this
    normalized: str  # lower-cased, accents stripped, whitespace folded (truncated to 255)


class TokenValue(NamedTuple):
    param: str
    system: str | None  # None when the element has no system; "" never stored
    code: str | None
    text: str | None = None  # normalized display/text for `:text`


class DateValue(NamedTuple):
    param: str
    low: int  # microseconds since epoch, inclusive
    high: int  # microseconds since epoch, inclusive (last microsecond of the range)


class NumberValue(NamedTuple):
    param: str
    value: float


class QuantityValue(NamedTuple):
    param: str
    value: float
    system: str | None
    code: str | None
    unit: str | None


class ReferenceValue(NamedTuple):
    param: str
    target_type: str | None  # e.g. "Patient"; None for absolute URLs we cannot type or contained refs
    target_id: str | None
    url: str | None  # the absolute URL or canonical as written, when not a local Type/id reference
    identifier_system: str | None = None  # Reference.identifier, for the `:identifier` modifier
    identifier_value: str | None = None


class UriValue(NamedTuple):
    param: str
    value: str


class SpecialValue(NamedTuple):
    """Location `near`: a latitude/longitude pair."""

    param: str
    latitude: float
    longitude: float


@dataclass(slots=True)
class IndexRows:
    strings: list[StringValue] = field(default_factory=list)
    tokens: list[TokenValue] = field(default_factory=list)
    dates: list[DateValue] = field(default_factory=list)
    numbers: list[NumberValue] = field(default_factory=list)
    quantities: list[QuantityValue] = field(default_factory=list)
    references: list[ReferenceValue] = field(default_factory=list)
    uris: list[UriValue] = field(default_factory=list)
    specials: list[SpecialValue] = field(default_factory=list)
