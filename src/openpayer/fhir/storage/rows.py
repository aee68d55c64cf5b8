"""A resource's index rows as the bulk writer sends them: tuples in column order, or COPY text.

The loader's workers turn each resource's extracted index (`IndexRows`) into rows here, so that the main
process, which writes, does no per-row work: on PostgreSQL the rows are COPY text whose `rid` (and, on
reference rows, `target_rid`) is a placeholder byte the writer replaces (`fhir.storage.bulk`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Table

from openpayer.fhir.storage.index import IndexRows
from openpayer.fhir.storage.tables import INDEX_TABLES, index_key
from openpayer.fhir.storage.targets import TARGET, Target

COLUMNS: dict[str, tuple[str, ...]] = {
    t.name: ("rid", *(c.name for c in t.columns if c.name != "rid")) for t in INDEX_TABLES
}
REFERENCES = "fhir_idx_reference"


@lru_cache(maxsize=4096)
def _hkey(env: str, rtype: str, param: str) -> int:
    return index_key(env, rtype, param)


def index_values(env: str, rtype: str, rows: IndexRows) -> dict[str, list[tuple[Any, ...]]]:
    """The index rows of a resource as compact tuples (column order, without `rid`): what
    `index_tuples(repository.index_rows_to_values(env, rtype, 0, rows))` gives, without the dicts.
    (The values are NamedTuples: unpacked here, which is faster than reading their attributes.)"""
    out: dict[str, list[tuple[Any, ...]]] = {}
    if rows.strings:
        out["fhir_idx_string"] = [
            (_hkey(env, rtype, param), normalized[:255], value[:512])
            for param, value, normalized in rows.strings
        ]
    if rows.tokens:
        out["fhir_idx_token"] = [
            (
                _hkey(env, rtype, param),
                None if system is None else system[:255],
                None if code is None else code[:255],
                None if text is None else text[:255],
            )
            for param, system, code, text in rows.tokens
        ]
    if rows.dates:
        out["fhir_idx_date"] = [(_hkey(env, rtype, param), low, high) for param, low, high in rows.dates]
    if rows.numbers:
        out["fhir_idx_number"] = [(_hkey(env, rtype, param), value) for param, value in rows.numbers]
    if rows.quantities:
        out["fhir_idx_quantity"] = [
            (
                _hkey(env, rtype, param),
                value,
                None if system is None else system[:255],
                None if code is None else code[:64],
                None if unit is None else unit[:64],
            )
            for param, value, system, code, unit in rows.quantities
        ]
    if rows.references:
        out["fhir_idx_reference"] = [
            (
                _hkey(env, rtype, param),
                target_type,
                None if target_id is None else target_id[:64],
                None if url is None else url[:512],
                None if id_system is None else id_system[:255],
                None if id_value is None else id_value[:255],
                None if target_type is None or target_id is None else TARGET,
            )
            for param, target_type, target_id, url, id_system, id_value in rows.references
        ]
    if rows.uris:
        out["fhir_idx_uri"] = [(_hkey(env, rtype, param), value[:512]) for param, value in rows.uris]
    if rows.specials:
        out["fhir_idx_special"] = [
            (_hkey(env, rtype, param), latitude, longitude) for param, latitude, longitude in rows.specials
        ]
    return out


def index_tuples(rows: Iterable[tuple[Table, Sequence[dict[str, Any]]]]) -> dict[str, list[tuple[Any, ...]]]:
    """`repository.index_rows_to_values` output as compact tuples (column order, without `rid`)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table, values in rows:
        if values:
            columns = COLUMNS[table.name][1:]
            out[table.name] = [tuple(value[column] for column in columns) for value in values]
    return out


# ---- COPY text (PostgreSQL) ----------------------------------------------------------------------
RID = b"\x01"  # the rid placeholder: "\x01" in a value is written as the escape `\x01`
TARGET_RID = b"\x02"  # the target rid's placeholder (`TARGET`), escaped in values likewise
_COPY_ESCAPES = str.maketrans(
    {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x01": "\\x01", "\x02": "\\x02"}
)


def reference_targets(index: dict[str, list[tuple[Any, ...]]]) -> list[Target]:
    """The (type, id) of the reference rows of `index_values` marked `TARGET`, in row order."""
    return [(row[1], row[2]) for row in index.get(REFERENCES, ()) if row[-1] is not None]


def with_target_rids(text: bytes, wanted: list[Target], found: dict[Target, int]) -> bytes:
    """A resource's reference rows in COPY text with each `TARGET` place filled (`\\N` when not found)."""
    parts = text.split(TARGET_RID)
    out = [parts[0]]
    for target, part in zip(wanted, parts[1:], strict=True):
        rid = found.get(target)
        out.append(b"\\N" if rid is None else str(rid).encode())
        out.append(part)
    return b"".join(out)


def copy_statement(name: str) -> str:
    return f"COPY {name} ({', '.join(COLUMNS[name])}) FROM STDIN"


def _copy_field(value: Any) -> str:
    """One value in COPY's text format, as psycopg's text dumpers write it."""
    kind = value.__class__
    if kind is str:
        return value.translate(_COPY_ESCAPES)
    if value is None:
        return "\\N"
    if kind is int:
        return str(value)
    if kind is float:
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    raise TypeError(f"no COPY text form for {kind.__name__}")


def index_copy_text(index: dict[str, list[tuple[Any, ...]]]) -> dict[str, bytes]:
    """`index_values` output as COPY text lines per table, each starting with the rid placeholder (and the
    reference rows' `TARGET` marks as the target rid's placeholder)."""
    out: dict[str, bytes] = {}
    for name, values in index.items():
        if not values:
            continue
        marks = sum(1 for row in values if row[-1] is not None) if name == REFERENCES else 0
        # Strings as they are first; if the separators' counts or a search over the text show that one
        # needed an escape, again with every string escaped.
        lines = [
            "\x01\t" + "\t".join([v if v.__class__ is str else _copy_field(v) for v in row]) + "\n"
            for row in values
        ]
        text = "".join(lines)
        plain = (
            text.count("\x01") == len(lines)
            and text.count("\x02") == marks
            and text.count("\t") == sum(map(len, values))
            and text.count("\n") == len(lines)
            and text.count("\\") == sum([row.count(None) for row in values])  # only the NULLs' \N
            and "\r" not in text
        )
        if not plain:
            last = -1 if marks else None  # a reference row's mark (its last value) stays as it is
            lines = [
                "\x01\t"
                + "\t".join(
                    [_escaped(v) for v in row[:last]]
                    + [v if v.__class__ is str else _copy_field(v) for v in row[len(row[:last]) :]]
                )
                + "\n"
                for row in values
            ]
            text = "".join(lines)
        out[name] = text.encode()
    return out


def _escaped(value: Any) -> str:
    return value.translate(_COPY_ESCAPES) if value.__class__ is str else _copy_field(value)


class _HkeyTexts(dict[str, str]):
    """The `hkey` of each parameter of one (environment, type), as COPY text, made on first use."""

    def __init__(self, env: str, rtype: str) -> None:
        super().__init__()
        self.env, self.rtype = env, rtype

    def __missing__(self, param: str) -> str:
        text = self[param] = str(_hkey(self.env, self.rtype, param))
        return text


_HKEY_TEXTS: dict[tuple[str, str], _HkeyTexts] = {}
_NULL = "\\N"
_MARK = TARGET  # a reference row's `target_rid` place


def index_copy_rows(env: str, rtype: str, rows: IndexRows) -> tuple[dict[str, bytes], list[Target]]:
    """What `index_copy_text(index_values(env, rtype, rows))` and `reference_targets` of the same give,
    written straight from the extracted values: a line per row from one format, no tuple per row and
    no per-value dispatch (a third of the workers' index-row time; docs/performance.md, Loading,
    "Thirteenth session"). The text is checked as `index_copy_text` checks its first, unescaped pass;
    a table with a value that needs escaping, and the rare float tables, go the general way."""
    hk = _HKEY_TEXTS.get((env, rtype))
    if hk is None:
        hk = _HKEY_TEXTS.setdefault((env, rtype), _HkeyTexts(env, rtype))
    out: dict[str, bytes] = {}
    targets: list[Target] = []
    if rows.dates:  # integers only: nothing to escape
        out["fhir_idx_date"] = "".join(
            [f"\x01\t{hk[param]}\t{low}\t{high}\n" for param, low, high in rows.dates]
        ).encode()
    if rows.tokens:
        nulls = 0
        lines = []
        for param, system, code, text in rows.tokens:
            if system is None:
                system, nulls = _NULL, nulls + 1
            if code is None:
                code, nulls = _NULL, nulls + 1
            if text is None:
                text, nulls = _NULL, nulls + 1
            lines.append(f"\x01\t{hk[param]}\t{system[:255]}\t{code[:255]}\t{text[:255]}\n")
        _checked(out, "fhir_idx_token", lines, 4, nulls, 0, env, rtype, rows)
    if rows.references:
        nulls = marks = 0
        lines = []
        for param, target_type, target_id, url, id_system, id_value in rows.references:
            mark = _NULL
            if target_id is None:
                target_id, nulls = _NULL, nulls + 1
            else:
                target_id = target_id[:64]
                if target_type is not None:
                    mark, marks = _MARK, marks + 1
                    targets.append((target_type, target_id))
            if target_type is None:
                target_type, nulls = _NULL, nulls + 1
            if url is None:
                url, nulls = _NULL, nulls + 1
            if id_system is None:
                id_system, nulls = _NULL, nulls + 1
            if id_value is None:
                id_value, nulls = _NULL, nulls + 1
            nulls += mark is _NULL
            lines.append(
                f"\x01\t{hk[param]}\t{target_type}\t{target_id}\t{url[:512]}\t{id_system[:255]}\t{id_value[:255]}"
                f"\t{mark}\n"
            )
        _checked(out, REFERENCES, lines, 7, nulls, marks, env, rtype, rows)
    if rows.uris:
        lines = [f"\x01\t{hk[param]}\t{value[:512]}\n" for param, value in rows.uris]
        _checked(out, "fhir_idx_uri", lines, 2, 0, 0, env, rtype, rows)
    if rows.strings:
        lines = [
            f"\x01\t{hk[p]}\t{normalized[:255]}\t{value[:512]}\n" for p, value, normalized in rows.strings
        ]
        _checked(out, "fhir_idx_string", lines, 3, 0, 0, env, rtype, rows)
    if rows.numbers or rows.quantities or rows.specials:
        general = IndexRows(numbers=rows.numbers, quantities=rows.quantities, specials=rows.specials)
        out.update(index_copy_text(index_values(env, rtype, general)))
    return out, targets


def _checked(
    out: dict[str, bytes],
    name: str,
    lines: list[str],
    columns: int,
    nulls: int,
    marks: int,
    env: str,
    rtype: str,
    rows: IndexRows,
) -> None:
    """Keep `name`'s text if no value holds a character COPY must escape, else write it the general way."""
    text = "".join(lines)
    count = len(lines)
    if (
        text.count("\t") == count * columns
        and text.count("\n") == count
        and text.count("\x01") == count
        and text.count("\x02") == marks
        and text.count("\\") == nulls
        and "\r" not in text
    ):
        out[name] = text.encode()
    else:
        out[name] = index_copy_text({name: index_values(env, rtype, rows)[name]})[name]
