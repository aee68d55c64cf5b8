"""One generated function per resource type that extracts its index rows in straight-line code.

Why: for each of a type's ~30 parameters, the plan loop of `extract_index` pays a tuple unpacking, a key
test, an extractor call that builds (value, FHIR type) pairs and a type lookup per value. Most R4
parameters are plain member paths from the resource (`ExplanationOfBenefit.item.encounter`) whose FHIR
type is known when compiling: the generated function walks those inline, walks a prefix they share
(`item`) once, and passes the type to the converter as a constant. The other parameters are called the
way the plan calls them. The rows and their order are the plan loop's; if anything raises, the caller
throws the generated rows away and runs the plan loop, which confines an error to its parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openpayer.fhir.codecache import compiled
from openpayer.fhir.search.fhirpath import is_type

# The lists the generated function fills, one per IndexRows attribute (also its parameters' names).
OUTPUTS = ("strings", "tokens", "dates", "numbers", "quantities", "references", "uris", "specials")

Converter = Callable[[str, Any, str | None, Any], None]


@dataclass(frozen=True, slots=True)
class Choice:
    """One type of a choice element: its JSON key, the key of its primitive extension, its FHIR type, and
    whether its values are kept (an `ofType` after the choice keeps one type's)."""

    key: str
    extension_key: str
    ftype: str | None
    kept: bool


@dataclass(frozen=True, slots=True)
class Member:
    """A branch that is a plain member path from the resource (its keys and the FHIR type it reaches),
    or such a path (possibly empty) then a choice element, whose first type present gives the values."""

    keys: tuple[str, ...]
    ftype: str | None
    choices: tuple[Choice, ...] | None = None
    resolves_to: str | None = None  # `.where(resolve() is T)` after a plain path: only references to a T


@dataclass(frozen=True, slots=True)
class Entry:
    """One search parameter of the plan: `members` when every branch is a `Member`, else it is called."""

    code: str
    attribute: str
    convert: Converter
    extractor: Callable[[Any], Any]
    is_steps: bool  # the extractor takes [(resource, type)] (rooted steps), else the resource
    needs: frozenset[str] | None  # properties one of which it needs (None: unknown)
    members: tuple[Member, ...] | None


GeneratedExtraction = Callable[..., None]


# A choice element of more types than this is left to the plan loop (its generated test would nest too deep).
_CHOICES_GENERATED = 16


def members_of(
    branches: list[list[Any]] | None, resource_type: str, fhir_type: Callable[[str], str | None]
) -> tuple[Member, ...] | None:
    """Each of a parameter's branches (`fhirpath.rooted_branches`) as a `Member`, if every branch is a plain
    member path from the resource, possibly ending in a choice element (then possibly an `ofType`) or in
    `where(resolve() is T)`; else None (the parameter is called). `fhir_type`: a node type's FHIR type,
    as the plan loop finds it."""
    if not branches:
        return None
    members = []
    for steps in branches:
        keys: tuple[str, ...] = ()
        ctype: str | None = resource_type
        if getattr(steps[0], "keys", None) is not None:  # a fused walk (`fhirpath._members`)
            keys, ctype, steps = tuple(steps[0].keys), steps[0].ctype, steps[1:]
        if ctype is None:
            return None
        resolve = getattr(steps[-1], "resolve_is", None) if steps else None
        if not steps or (resolve is not None and len(steps) == 1):
            ftype = fhir_type(ctype)
            if not keys or ftype == "Extension":  # converted through `_extension_value`: left to the loop
                return None
            members.append(Member(keys, ftype, resolves_to=resolve))
            continue
        key = getattr(steps[0], "member", None)
        if key is None:
            return None
        is_choice, spec = steps[0].plan(ctype)
        only = getattr(steps[1], "type_name", None) if len(steps) == 2 else None
        if not is_choice or len(spec) > _CHOICES_GENERATED or len(steps) > 1 + (only is not None):
            return None
        choices = []
        for json_key, extension_key, choice_type in spec:
            ftype = fhir_type(choice_type)
            if choice_type == "Resource" or ftype == "Extension":
                return None
            kept = only is None or is_type(choice_type, only)
            choices.append(Choice(json_key, extension_key, ftype, kept))
        members.append(Member(keys, None, tuple(choices)))
    return tuple(members)


class _Writer:
    def __init__(self, inline: dict[str, str]) -> None:
        self.inline = inline
        self.lines: list[str] = []
        self.namespace: dict[str, Any] = {}
        self.prefixes: dict[tuple[str, ...], str] = {}

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def constant(self, value: Any) -> str:
        name = f"K{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def prefix(self, keys: tuple[str, ...]) -> str:
        """The local holding the values at `keys`, lists flattened (their nulls kept: a reader takes the
        dicts only), computed where first used."""
        name = self.prefixes.get(keys)
        if name is not None:
            return name
        parent = self.prefix(keys[:-1]) if len(keys) > 1 else None
        name = f"p{len(self.prefixes)}"
        if parent is None:
            self.emit(1, f"v = get({keys[0]!r})")
            # Nulls in a list stay: whoever reads a prefix takes its dicts only.
            self.emit(1, f"{name} = () if v is None else v if type(v) is list else (v,)")
        else:
            self.emit(1, f"{name} = []")
            self.emit(1, f"for d in {parent}:")
            self.emit(2, "if type(d) is dict:")
            self.emit(3, f"v = d.get({keys[-1]!r})")
            self.emit(3, "if v is not None:")
            self.emit(4, "if type(v) is list:")
            self.emit(5, f"{name} += v")
            self.emit(4, "else:")
            self.emit(5, f"{name}.append(v)")
        self.prefixes[keys] = name
        return name

    def member(self, entry: Entry, member: Member) -> None:
        convert = self.constant(entry.convert)
        template = self.inline.get(entry.attribute, "{convert}({code}, {value}, {ftype}, {out})")

        def call(depth: int, value: str, ftype: str | None) -> None:
            if member.resolves_to is not None:
                self.emit(depth, f"if resolves_to({value}, {member.resolves_to!r}):")
                depth += 1
            filled = template.format(
                convert=convert,
                code=repr(entry.code),
                value=value,
                ftype=repr(ftype),
                out=entry.attribute,
            )
            for line in filled.splitlines():
                self.emit(depth, line)

        def values(depth: int, ftype: str | None) -> None:
            """Convert `v` (not null): each item of a list, or itself."""
            self.emit(depth, "if type(v) is list:")
            self.emit(depth + 1, "for x in v:")
            self.emit(depth + 2, "if x is not None:")
            call(depth + 3, "x", ftype)
            self.emit(depth, "else:")
            call(depth + 1, "v", ftype)

        if member.choices is None:
            *inner, last = member.keys
        else:
            inner, last = list(member.keys), ""
        depth, get = 1, "get"
        if inner:
            self.emit(1, f"for d in {self.prefix(tuple(inner))}:")
            self.emit(2, "if type(d) is dict:")
            depth, get = 3, "d.get"
        if member.choices is None:
            self.emit(depth, f"v = {get}({last!r})")
            self.emit(depth, "if v is not None:")
            values(depth + 1, member.ftype)
            return
        if not inner:  # a choice of the resource's own: most resources have none of its keys
            present = frozenset(k for c in member.choices for k in (c.key, c.extension_key))
            self.emit(1, f"if not keys.isdisjoint({self.constant(present)}):")
            depth = 2
        # The first type present, by its value or its primitive extension alone (which gives no value).
        for choice in member.choices:
            self.emit(depth, f"v = {get}({choice.key!r})")
            self.emit(depth, "if v is not None:")
            if choice.kept:
                values(depth + 1, choice.ftype)
            else:
                self.emit(depth + 1, "pass")
            self.emit(depth, f"elif {get}({choice.extension_key!r}) is None:")
            depth += 1
        self.emit(depth, "pass")

    def called(self, entry: Entry) -> None:
        extractor, convert = self.constant(entry.extractor), self.constant(entry.convert)
        depth = 1
        if entry.needs is not None:
            self.emit(1, f"if not keys.isdisjoint({self.constant(entry.needs)}):")
            depth = 2
        self.emit(depth, f"for value, path in {extractor}({'root' if entry.is_steps else 'resource'}):")
        self.emit(depth + 1, 'ftype = types_get(path, "")')
        self.emit(depth + 1, 'if ftype == "":')
        self.emit(depth + 2, "ftype = type_of(path)")
        self.emit(depth + 1, 'if ftype == "Extension":')
        self.emit(depth + 2, "value, ftype = extension_value(value)")
        self.emit(depth + 1, f"{convert}({entry.code!r}, value, ftype, {entry.attribute})")


def generate(
    resource_type: str,
    entries: list[Entry],
    *,
    types_get: Callable[[Any, str], Any],
    type_of: Callable[[Any], str | None],
    extension_value: Callable[[Any], tuple[Any, str | None]],
    inline: dict[str, str] | None = None,
    helpers: dict[str, Any] | None = None,
) -> GeneratedExtraction:
    """The function `(resource, root, keys, *OUTPUTS)` that appends `entries`' rows to the lists.

    `inline`, by output: a converter's common case written in place of its call, with the call for the
    rest (a template of lines: `{value}` a local, `{code}` and `{ftype}` literals, `{out}` the list,
    `{convert}` the converter); `helpers`: the names its lines use."""
    writer = _Writer(inline or {})
    writer.namespace.update(helpers or {})
    writer.namespace.update(types_get=types_get, type_of=type_of, extension_value=extension_value)
    body_start = len(writer.lines)
    writer.emit(1, "get = resource.get")
    for entry in entries:
        if entry.members is None:
            writer.called(entry)
        else:
            for member in entry.members:
                writer.member(entry, member)
    if len(writer.lines) == body_start + 1:
        writer.emit(1, "return")
    name = "extract_" + "".join(c if c.isalnum() else "_" for c in resource_type)
    source = "\n".join([f"def {name}(resource, root, keys, {', '.join(OUTPUTS)}):", *writer.lines])
    namespace = dict(writer.namespace)
    exec(compiled(source, f"<extraction of {resource_type}>"), namespace)  # noqa: S102
    function: GeneratedExtraction = namespace[name]
    function.source = source  # type: ignore[attr-defined]  # for tests and the curious
    return function
