"""The expected results of a search, worked out without the search engine.

A small evaluator of the FHIRPath subset SearchParameter expressions of the served guides use (paths,
choice elements, `as`/`ofType`, `where(resolve() is T)`, `where(url = '...')`, unions) and the R4 matching
rules the conformance cases need (string prefix without case or accents, token `system|code`, reference
`Type/id`, date `ge` on a day and equality at the value's precision).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

Key = tuple[str, str]  # (resource type, id)


# ---- a small FHIRPath evaluator for SearchParameter expressions --------------------------------------------

Node = tuple[Any, str | None]  # (value, type suffix of a choice element, e.g. "DateTime")


def _split_top(text: str, sep: str) -> list[str]:
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and depth == 0 and ch == sep:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _unwrap(text: str) -> str:
    while text.startswith("(") and text.endswith(")") and _split_top(text[1:-1], "|") == [text[1:-1].strip()]:
        inner = text[1:-1]
        depth = 0
        balanced = True
        for ch in inner:
            depth += ch == "("
            depth -= ch == ")"
            if depth < 0:
                balanced = False
                break
        if not balanced:
            break
        text = inner.strip()
    return text


def _children(node: Node, name: str) -> Iterator[Node]:
    value = node[0]
    if not isinstance(value, dict):
        return
    items: list[tuple[Any, str | None]] = []
    if name in value:
        items.append((value[name], None))
    else:
        for key, child in value.items():
            if key.startswith(name) and key[len(name) : len(name) + 1].isupper():
                items.append((child, key[len(name) :]))
    for child, suffix in items:
        for item in child if isinstance(child, list) else [child]:
            yield item, suffix


def _of_type(nodes: list[Node], type_name: str) -> list[Node]:
    return [n for n in nodes if n[1] is None or n[1].lower() == type_name.lower()]


def _step(nodes: list[Node], step: str) -> list[Node]:
    call = re.fullmatch(r"(\w+)\((.*)\)", step)
    if call is None:
        return [child for node in nodes for child in _children(node, step)]
    name, arg = call.group(1), call.group(2).strip()
    if name in ("as", "ofType"):
        return _of_type(nodes, arg)
    if name == "where":
        resolved = re.fullmatch(r"resolve\(\)\s+is\s+(\w+)", arg)
        if resolved:
            keyed = [(n, ref_key(n[0])) for n in nodes]
            return [n for n, key in keyed if key is not None and key[0] == resolved.group(1)]
        test = re.fullmatch(r"(\w+)\s*=\s*'([^']*)'", arg)
        if test:
            return [n for n in nodes if isinstance(n[0], dict) and n[0].get(test.group(1)) == test.group(2)]
    raise ValueError(f"unsupported FHIRPath step {step!r}")


def evaluate(resource: dict[str, Any], expression: str | None, rtype: str) -> list[Any]:
    found: list[Any] = []
    for branch in _split_top(expression or "", "|"):
        text = _unwrap(branch)
        if not text:
            continue
        as_type = None
        cast = re.fullmatch(r"(.*\S)\s+as\s+(\w+)", text)
        if cast:
            text, as_type = _unwrap(cast.group(1)), cast.group(2)
        steps = _split_top(text, ".")
        if steps[0][:1].isupper():
            if steps[0] not in (rtype, "Resource", "DomainResource"):
                continue
            steps = steps[1:]
        nodes: list[Node] = [(resource, None)]
        for step in steps:
            nodes = _step(nodes, step)
        if as_type:
            nodes = _of_type(nodes, as_type)
        found.extend(_unwrap_extension(n[0]) for n in nodes)
    return found


def _unwrap_extension(value: Any) -> Any:
    """An Extension selected by an expression searches as its value (`Extension.value[x]`)."""
    if isinstance(value, dict) and isinstance(value.get("url"), str):
        values = [v for k, v in value.items() if k.startswith("value")]
        if len(values) == 1:
            return values[0]
    return value


# ---- matching (FHIR R4 §3.1.1.4) ---------------------------------------------------------------------------

_REF = re.compile(r"^(?:.*/)?([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/.*)?$")


def ref_key(value: Any) -> Key | None:
    text = value.get("reference") if isinstance(value, dict) else None
    if not isinstance(text, str) or text.startswith(("#", "urn:")):
        return None
    if "://" in text and "://testserver/" not in text:
        return None
    match = _REF.match(text)
    return (match.group(1), match.group(2)) if match else None


def _norm(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).casefold().split())


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, dict):
        return []
    out: list[str] = []
    for key in ("family", "given", "prefix", "suffix", "text", "line", "city", "district", "state"):
        item = value.get(key)
        out.extend([item] if isinstance(item, str) else [i for i in item or [] if isinstance(i, str)])
    for key in ("postalCode", "country"):
        if isinstance(value.get(key), str):
            out.append(value[key])
    return out


def _tokens(value: Any) -> list[tuple[str | None, str]]:
    if isinstance(value, bool):
        return [(None, str(value).lower())]
    if isinstance(value, str):
        return [(None, value)]
    if not isinstance(value, dict):
        return []
    if "coding" in value:
        return [t for coding in value["coding"] for t in _tokens(coding)]
    if isinstance(value.get("code"), str):
        return [(value.get("system"), value["code"])]
    if isinstance(value.get("value"), str):
        return [(value.get("system"), value["value"])]
    return []


_DATE = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
_LOW, _HIGH = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)


def _range(text: str) -> tuple[datetime, datetime] | None:
    m = _DATE.match(text)
    if m is None:
        return None
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    zone = UTC
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        zone = timezone(sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6])))
    if mo is None:
        return datetime(int(y), 1, 1, tzinfo=UTC), datetime(int(y) + 1, 1, 1, tzinfo=UTC)
    if d is None:
        start = datetime(int(y), int(mo), 1, tzinfo=UTC)
        return start, (start + timedelta(days=32)).replace(day=1)
    if hh is None:
        start = datetime(int(y), int(mo), int(d), tzinfo=UTC)
        return start, start + timedelta(days=1)
    start = datetime(int(y), int(mo), int(d), int(hh), int(mi), int(ss or 0), tzinfo=zone)
    if frac:
        start = start.replace(microsecond=int(frac[:6].ljust(6, "0")))
    return start, start + timedelta(seconds=1)


def _ranges(value: Any) -> list[tuple[datetime, datetime]]:
    if isinstance(value, str):
        found = _range(value)
        return [found] if found else []
    if isinstance(value, dict) and ("start" in value or "end" in value):
        low = _range(value["start"]) if isinstance(value.get("start"), str) else None
        high = _range(value["end"]) if isinstance(value.get("end"), str) else None
        return [(low[0] if low else _LOW, high[1] if high else _HIGH)]
    return []


def query_value(kind: str, value: Any, known: Callable[[Key], bool], exact: bool = False) -> str | None:
    """The search value that finds `value` (an element the parameter's expression selected); `exact`: a
    date as the element's own text (an `eq` search at its precision), as Inferno's kits search."""
    if kind == "token":
        tokens = _tokens(value)
        if not tokens:
            return None
        system, code = tokens[0]
        return f"{system}|{code}" if system else code
    if kind == "reference":
        key = ref_key(value)
        return f"{key[0]}/{key[1]}" if key and known(key) else None
    if kind == "string":
        texts = _strings(value)
        return texts[0] if texts else None
    if kind == "date" and exact:
        return value if isinstance(value, str) and _range(value) else None
    if kind == "date":
        ranges = _ranges(value)
        if not ranges or ranges[0][0] == _LOW:
            return None
        return "ge" + ranges[0][0].astimezone(UTC).strftime("%Y-%m-%d")
    return None


def matches(kind: str, value: Any, query: str) -> bool:
    if kind == "token":
        system, _, code = query.rpartition("|") if "|" in query else (None, "", query)
        return any(c == code and (system is None or s == system) for s, c in _tokens(value))
    if kind == "reference":
        key = ref_key(value)
        return key is not None and f"{key[0]}/{key[1]}" == query
    if kind == "string":
        return any(_norm(text).startswith(_norm(query)) for text in _strings(value))
    if kind == "date" and not query.startswith("ge"):
        wanted = _range(query)
        assert wanted is not None
        return any(wanted[0] <= low and high <= wanted[1] for low, high in _ranges(value))
    if kind == "date":
        floor = datetime.strptime(query[2:], "%Y-%m-%d").replace(tzinfo=UTC)
        return any(high > floor for _, high in _ranges(value))
    raise ValueError(f"no matching rule for {kind}")
