"""Structural validation of a FHIR R4 resource in its JSON form against the base StructureDefinitions.

This runs on every write and during bulk loads, so it walks precomputed element trees (`model`) rather
than interpreting the definitions, and checks the invariants that matter in Python rather than FHIRPath.
It reports every problem, not just the first, as `Issue`s with a FHIRPath-style ``expression`` in simple
form (``Patient.contact[0].name.family``; a choice is named by its JSON key, ``Observation.valueQuantity``;
a nested resource by its container's path, ``Bundle.entry[2].resource.status``).

Issue codes: ``structure`` (unknown element, wrong JSON shape or type, empty object/array, cardinality,
choice with several values), ``required`` (missing element), ``value`` (primitive lexical form or range,
reference format), ``code-invalid`` (required binding), ``invalid`` (unknown resourceType, wrong
reference target), ``invariant`` (dom-2..5, ref-1, ext-1, obs-6/7, bdl-*), ``duplicate`` (contained ids),
``too-long`` (string over 1 MB), ``too-costly`` (nesting, size or issue count past the limits below).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from openpayer.fhir.outcome import Issue
from openpayer.fhir.validation import invariants
from openpayer.fhir.validation.model import (
    BOUND,
    COMPLEX,
    MANY_OBJECTS,
    OBJECT,
    ONE_CODE,
    ONE_DECIMAL,
    ONE_OBJECT,
    ONE_PLAIN,
    ONE_STRING,
    ONE_URI,
    PLAIN,
    PRIMITIVE,
    URI,
    Field,
    Model,
    Node,
    get_model,
)
from openpayer.fhir.validation.primitives import INT32_MAX, MAX_STRING, a_or_an, show
from openpayer.fhir.validation.references import CONDITIONAL, LOCAL, parse_reference
from openpayer.fhir.validation.walkers import generate_walker

logger = logging.getLogger(__name__)

# Objects nested deeper than this are not descended into: real resources stay far below (a 10-level
# Questionnaire is ~40), and it keeps recursion well inside Python's default limit.
MAX_DEPTH = 100
# Objects visited per call: ~15,000 per MB of JSON, so this allows a ~65 MB Bundle. It stops Python-built
# structures that share sub-objects (walked exponentially often) from stalling a worker for long.
MAX_OBJECTS = 1_000_000
# Past this many issues the rest is noise (and an OperationOutcome of a million issues is a hazard too).
MAX_ISSUES = 1000


class _TooCostly(Exception):
    def __init__(self, diagnostics: str) -> None:
        super().__init__(diagnostics)
        self.diagnostics = diagnostics


_EMPTY = "empty {what} (FHIR JSON has no empty values: R4 §2.6.2, ele-1)"

# Where an object is, built only when an issue names it: a str, or (parent, ".key") for a property, or
# (parent, ".key", index) for an array item. The walk builds these tuples instead of strings (most objects
# have no issue, and string building was a sixth of the walk's time).
Where = Any


def render(where: Where) -> str:
    """The FHIRPath-style expression of a `Where`."""
    if where.__class__ is str:
        return where
    parts: list[str] = []
    while where.__class__ is not str:
        parts.append(where[1] if len(where) == 2 else f"{where[1]}[{where[2]}]")
        where = where[0]
    parts.append(where)
    return "".join(reversed(parts))


def validate_resource(resource: object) -> list[Issue]:
    """Every structural problem of a parsed JSON resource; an empty list means valid. Never raises."""
    model = get_model()
    if not model.walkers:
        install_walkers(model)
    validator = _Validator(model)
    try:
        if not isinstance(resource, dict):
            validator.report(
                "structure", f"a resource must be a JSON object, not {_json_kind(resource)}", None
            )
        else:
            validator.resource(resource, None, None, contained=False)
    except _TooCostly as stop:
        validator.issues.append(Issue("error", "too-costly", stop.diagnostics))
    except RecursionError:  # the caller's own stack was already deep
        validator.issues.append(Issue("error", "too-costly", "nested too deeply to validate"))
    except Exception as exc:  # a validator bug must surface as an issue, not as a 500 on every write
        logger.exception("structure validation failed")
        diagnostics = f"validator failure: {type(exc).__name__}: {show(str(exc))}"
        validator.issues.append(Issue("error", "exception", diagnostics))
    return validator.issues


def known_resource_types() -> frozenset[str]:
    """The concrete FHIR R4 4.0.1 resource types (146; R4B's SubscriptionStatus is not one)."""
    return get_model().resource_types


class _Frame:
    """Per top-level resource (Bundle entries and Parameters resources get their own): contained ids
    for ref-1, and which contained resources are referenced, for dom-3."""

    __slots__ = ("by_id", "current", "indexes", "positions", "referenced")

    def __init__(self) -> None:
        self.indexes: list[tuple[int, object]] = []  # (position, id) of the objects in `contained`
        self.by_id: dict[str, tuple[int, str]] = {}  # contained id -> (position, resourceType)
        self.positions: dict[int, int] = {}  # id() of a contained dict -> position
        self.referenced: set[int] = set()  # positions referenced as "#id" or referring to "#"
        self.current: int | None = None  # position of the contained resource being walked

    def refer(self, contained_id: str) -> None:
        found = self.by_id.get(contained_id)
        if found is not None:
            self.referenced.add(found[0])


# References checked without an issue (see `_Validator.reference`), then forgotten all at once; a longer
# literal is not kept.
_VALID_REFERENCES: dict[tuple[Any, ...], None] = {}
_REFERENCES_KEPT = 16384
_REMEMBERED_LITERAL = 256


class _Validator:
    __slots__ = ("budget", "depth", "frame", "issues", "model", "resource_types", "too_deep", "transaction")

    def __init__(self, model: Model) -> None:
        self.model = model
        self.resource_types = model.resource_types
        self.issues: list[Issue] = []
        self.frame: _Frame | None = None
        self.transaction = False  # inside a transaction/batch Bundle: conditional references allowed
        self.depth = 0
        self.budget = MAX_OBJECTS
        self.too_deep = False

    def report(self, code: str, diagnostics: str, expression: Where | None) -> None:
        if expression is not None and expression.__class__ is not str:
            expression = render(expression)
        self.issues.append(Issue("error", code, diagnostics, (expression,) if expression else ()))
        if len(self.issues) >= MAX_ISSUES:
            raise _TooCostly(f"more than {MAX_ISSUES} issues; validation stopped")

    # -- resources ---------------------------------------------------------------------------------

    def resource(self, obj: Any, path: Where | None, expected: str | None, contained: bool) -> None:
        if path is not None:
            path = render(path)
        if not isinstance(obj, dict):
            self.report("structure", f"a resource must be a JSON object, not {_json_kind(obj)}", path)
            return
        resource_type = obj.get("resourceType")
        if resource_type is None:
            self.report("required", "missing resourceType", path)
            return
        node = self.model.resources.get(resource_type) if isinstance(resource_type, str) else None
        if node is None:
            self.report("invalid", f"unknown resourceType {show(resource_type)}", path)
            return
        if expected is not None and resource_type != expected:
            self.report("invalid", f"expected {a_or_an(expected)} resource here, not {resource_type}", path)
        where = path or resource_type
        if contained:
            self.contained_resource(obj, node, where)
            return
        saved_frame, saved_transaction = self.frame, self.transaction
        self.frame = frame = self.new_frame(obj, where)
        if resource_type == "Bundle":
            self.transaction = obj.get("type") in ("transaction", "batch")
        node.walker(self, obj, where)
        self.frame, self.transaction = saved_frame, saved_transaction
        for i, contained_id in frame.indexes:
            if i not in frame.referenced:
                self.report(
                    "invariant",
                    f"dom-3: contained resource {show(contained_id)} is not referenced from elsewhere in the "
                    "resource and does not refer to its container",
                    f"{where}.contained[{i}]",
                )

    def new_frame(self, obj: dict[str, Any], path: str) -> _Frame:
        frame = _Frame()
        contained = obj.get("contained")
        if not isinstance(contained, list):
            return frame
        for i, item in enumerate(contained):
            if not isinstance(item, dict):
                continue
            frame.positions[id(item)] = i
            contained_id = item.get("id")
            frame.indexes.append((i, contained_id))
            if not isinstance(contained_id, str):
                continue
            if contained_id in frame.by_id:
                self.report(
                    "duplicate",
                    f"contained id {show(contained_id)} is used twice",
                    f"{path}.contained[{i}].id",
                )
                continue
            resource_type = item.get("resourceType")
            frame.by_id[contained_id] = (i, resource_type if isinstance(resource_type, str) else "")
        return frame

    def contained_resource(self, obj: dict[str, Any], node: Node, path: Where) -> None:
        if "contained" in obj:
            self.report(
                "invariant",
                "dom-2: a contained resource SHALL NOT contain nested resources",
                f"{path}.contained",
            )
        meta = obj.get("meta")
        if isinstance(meta, dict):
            for key in ("versionId", "lastUpdated"):
                if key in meta:
                    self.report(
                        "invariant",
                        "dom-4: a contained resource SHALL NOT have a meta.versionId or a meta.lastUpdated",
                        f"{path}.meta.{key}",
                    )
            if "security" in meta:
                self.report(
                    "invariant",
                    "dom-5: a contained resource SHALL NOT have a security label",
                    f"{path}.meta.security",
                )
        frame = self.frame
        if frame is None:
            node.walker(self, obj, path)
            return
        saved = frame.current
        frame.current = frame.positions.get(id(obj))
        node.walker(self, obj, path)
        frame.current = saved

    # -- objects -----------------------------------------------------------------------------------
    # An object is walked by its node's walker, `node.walker(self, obj, path)`: generated
    # (`install_walkers`), or `walk_generic` (in tests, `generic_walker`). Callers call it directly,
    # with no method in between: one Python frame less for every object of every resource validated.

    def walk_generic(self, obj: dict[str, Any], node: Node, path: Where) -> None:
        """The walk of any node: `walkers` generates a faster one per node, which does the same for its fast
        fields and hands every other key to `general_key`."""
        if self.depth >= MAX_DEPTH:
            if not self.too_deep:  # once: a wide tree could hit the limit on every branch
                self.too_deep = True
                self.report(
                    "too-costly", f"nested more than {MAX_DEPTH} objects deep; not checked further", path
                )
            return
        self.depth += 1
        self.budget -= 1
        if self.budget < 0:
            raise _TooCostly(f"more than {MAX_OBJECTS} objects to check; validation stopped")
        fields = node.fields
        seen: dict[str, str] | None = None  # choice base -> key, to catch value[x] given twice
        for key, value in obj.items():
            field = fields.get(key)
            if field is None:
                self.other_key(obj, node, key, value, path)
                continue
            # The commonest fields first (see `Field.set_fast`): the same outcome as the general code below.
            fast = field.fast
            if fast >= ONE_STRING:
                # A valid value of the commonest kinds, recognised without calling the checker; anything
                # else goes the ONE_PLAIN way (or, for a uri, the general way) below.
                cls = value.__class__
                if fast == ONE_STRING:
                    if cls is str and value and len(value) <= MAX_STRING:
                        continue
                elif fast == ONE_CODE:
                    if cls is str and value and value.isprintable() and " " not in value:
                        continue
                elif fast == ONE_URI:
                    if cls is str and value and value.isprintable() and " " not in value:
                        if value[0] == "#":
                            self.refer(value)
                        continue
                    if value is None or cls is list:
                        self.bad_shape(field, value, (path, field.dot))
                    else:
                        self.value(value, field, (path, field.dot))
                    continue
                elif fast == ONE_DECIMAL:
                    if cls is int or cls is float:
                        continue
                elif cls is int and field.low <= value <= INT32_MAX:  # ONE_INTEGER
                    continue
                fast = ONE_PLAIN
            if fast == ONE_PLAIN:
                if value.__class__ is list or value is None:
                    self.bad_shape(field, value, (path, field.dot))
                else:
                    problem = field.check(value)
                    if problem is not None:
                        self.report(problem[0], problem[1], (path, field.dot))
                continue
            if fast == ONE_OBJECT:
                if value.__class__ is dict and value:
                    field.node.walker(self, value, (path, field.dot))  # type: ignore[union-attr]
                elif value is None or value.__class__ is list:
                    self.bad_shape(field, value, (path, field.dot))
                else:
                    self.value(value, field, (path, field.dot))
                continue
            if fast == MANY_OBJECTS:
                if value.__class__ is not list or not value:
                    self.bad_shape(field, value, (path, field.dot))
                    continue
                self.objects(obj, key, value, field, path)
                continue
            seen = self.general_key(obj, node, key, value, path, seen, field)
        for name, keys in node.required:
            for key in keys:
                if key in obj:
                    break
            else:
                base = name[:-3] if name.endswith("[x]") else name
                self.report("required", f"missing required element {name}", (path, "." + base))
        special = node.special
        if special is not None:
            if special == "Extension":
                invariants.extension(obj, path, self.report)
            elif special == "Bundle":
                invariants.bundle(obj, render(path), self.report)
            elif special == "Observation":
                invariants.observation(obj, render(path), self.report)
        self.depth -= 1

    def objects(self, obj: dict[str, Any], key: str, value: list[Any], field: Field, path: Where) -> None:
        """The items of a non-empty array of complex values: each object walked, anything else reported."""
        walker = field.node.walker  # type: ignore[union-attr]
        dot = field.dot
        for i, item in enumerate(value):
            if item.__class__ is dict and item:
                walker(self, item, (path, dot, i))
            elif item is None:
                self.null_item(obj, key, i, (path, dot))
            else:
                self.value(item, field, (path, dot, i))

    def general_key(
        self,
        obj: dict[str, Any],
        node: Node,
        key: str,
        value: Any,
        path: Where,
        seen: dict[str, str] | None,
        field: Field | None,
    ) -> dict[str, str] | None:
        """One property of `obj` (by any path but the fast ones): returns the choices seen so far."""
        if field is None:
            self.other_key(obj, node, key, value, path)
            return seen
        if field.choice is not None:
            if seen is None:
                seen = {field.choice: key}
            elif field.choice in seen:
                first = seen[field.choice]
                self.report(
                    "structure",
                    f"{node.choices[field.choice]} has more than one value: {first} and {key}",
                    (path, field.dot),
                )
            else:
                seen[field.choice] = key
        # The common shapes are handled inline, with exact-type tests (other types fall through to
        # the general `value`), and paths are built only when an issue is reported: this loop runs for
        # every property of every object of every resource written.
        route = field.route
        if field.array:
            if value.__class__ is not list or not value:
                self.bad_shape(field, value, (path, field.dot))
                return seen
            if field.max is not None and len(value) > field.max:
                self.report(
                    "structure",
                    f"{len(value)} values, but at most {field.max} allowed",
                    (path, field.dot),
                )
            if route == OBJECT:
                self.objects(obj, key, value, field, path)
            elif route in (PLAIN, URI):
                check = field.check
                for i, item in enumerate(value):
                    if item is None:
                        self.null_item(obj, key, i, (path, field.dot))
                    elif check(item) is not None:
                        self.value(item, field, (path, field.dot, i))
                    elif route == URI and item[0] == "#":
                        self.refer(item)
            elif route == BOUND:
                codes = field.codes
                for i, item in enumerate(value):
                    if item is None:
                        self.null_item(obj, key, i, (path, field.dot))
                    elif item.__class__ is not str or item not in codes:  # type: ignore[operator]
                        self.value(item, field, (path, field.dot, i))
            else:
                dot = field.dot
                for i, item in enumerate(value):
                    if item is None:
                        self.null_item(obj, key, i, (path, dot))
                    else:
                        self.value(item, field, (path, dot, i))
        elif value is None or value.__class__ is list or field.max == 0:
            self.bad_shape(field, value, (path, field.dot))
        elif route == PLAIN:
            problem = field.check(value)
            if problem is not None:
                self.report(problem[0], problem[1], (path, field.dot))
        elif route == OBJECT:
            if value.__class__ is dict and value:
                field.node.walker(self, value, (path, field.dot))  # type: ignore[union-attr]
            else:
                self.value(value, field, (path, field.dot))
        elif route == BOUND:
            # Every member of a required value set is a valid code: skip the regex for those.
            if value.__class__ is not str or value not in field.codes:  # type: ignore[operator]
                self.value(value, field, (path, field.dot))
        else:
            self.value(value, field, (path, field.dot))
        return seen

    def value(self, value: Any, field: Field, path: Where) -> None:
        kind = field.kind
        if kind == PRIMITIVE:
            problem = field.check(value)
            if problem is not None:
                self.report(problem[0], problem[1], path)
            elif field.codes is not None and value not in field.codes:
                self.bad_code(value, field, path)
            elif field.uri and value[0] == "#":
                self.refer(value)
        elif kind == COMPLEX:
            if not isinstance(value, dict):
                self.report(
                    "structure", f"{a_or_an(field.code)} must be a JSON object, not {_json_kind(value)}", path
                )
            elif not value:
                self.report("structure", _EMPTY.format(what="object"), path)
            else:
                field.node.walker(self, value, path)  # type: ignore[union-attr]
                if field.systems is not None:
                    self.coded(value, field, path)
                if field.code == "Reference":
                    self.reference(value, field.targets, path)
        else:
            self.resource(value, path, field.expected, field.contained)

    def bad_shape(self, field: Field, value: Any, path: Where) -> None:
        """Cardinality and JSON shape errors: array vs single, empty array, null, max 0."""
        path = render(path)
        if field.max == 0:
            self.report("structure", f"{field.key} is not allowed here (max cardinality 0)", path)
        elif field.array:
            if isinstance(value, list) and value:  # a list subclass: not for the inline fast path
                for i, item in enumerate(value):
                    if item is not None:
                        self.value(item, field, f"{path}[{i}]")
            elif isinstance(value, list):
                self.report("structure", _EMPTY.format(what="array"), path)
            else:
                self.report("structure", f"{field.key} must be a JSON array (max cardinality *)", path)
                if value is not None:
                    self.value(value, field, path)
        elif isinstance(value, list):
            self.report("structure", f"{field.key} must not be an array (max cardinality 1)", path)
        else:
            self.report("structure", "null is not allowed (FHIR JSON has no null values)", path)

    def bad_code(self, value: Any, field: Field, path: Where) -> None:
        self.report("code-invalid", f"{show(value)} is not in the required value set {field.binding}", path)

    def refer(self, value: str) -> None:
        """A uri/canonical "#id" counts as a reference to that contained resource (dom-3)."""
        if self.frame is not None:
            self.frame.refer(value[1:])

    def other_key(self, obj: dict[str, Any], node: Node, key: str, value: Any, path: Where) -> None:
        """A key that is not an element: a primitive's `_key` sibling, resourceType, or an error."""
        path = render(path)
        if not isinstance(key, str):  # only possible for dicts not parsed from JSON
            self.report("structure", f"property names must be strings, not {show(key)}", path)
            return
        if key[:1] == "_":
            field = node.fields.get(key[1:])
            if field is not None and field.ext_ok:
                self.primitive_extension(obj, field, value, path + "." + field.key)
                return
        elif key == "resourceType" and node.is_resource:
            return
        message = f"unknown element {show(key)} in {node.name}"
        for base, name in node.choices.items():
            if key.startswith(base) and key[len(base) : len(base) + 1].isupper():
                message = f"{show(key)} is not an allowed type for {node.name}.{name}"
        self.report("structure", message, path + "." + key)

    def null_item(self, obj: dict[str, Any], key: str, index: int, path: Where) -> None:
        """``[null, "b"]`` is only allowed when ``_key`` carries an extension at that index."""
        path = render(path)
        extensions = obj.get("_" + key)
        if not isinstance(extensions, list) or index >= len(extensions) or extensions[index] is None:
            self.report(
                "structure", "null is only allowed in an array aligned with a _ sibling", f"{path}[{index}]"
            )

    def primitive_extension(self, obj: dict[str, Any], field: Field, value: Any, path: str) -> None:
        """``_birthDate: {id, extension}``; for arrays ``_given: [null, {...}]`` aligned with ``given``."""
        element = self.model.element
        if not field.array:
            if not isinstance(value, dict):
                self.report("structure", f"_{field.key} must be a JSON object (id, extension)", path)
            elif not value:
                self.report("structure", _EMPTY.format(what="object"), path)
            else:
                element.walker(self, value, path)
            return
        if not isinstance(value, list):
            self.report("structure", f"_{field.key} must be a JSON array aligned with {field.key}", path)
            return
        if not value:
            self.report("structure", _EMPTY.format(what="array"), path)
            return
        values = obj.get(field.key)
        if isinstance(values, list) and len(values) != len(value):
            self.report(
                "structure",
                f"_{field.key} has {len(value)} items but {field.key} has {len(values)}: they must align",
                path,
            )
        for i, item in enumerate(value):
            where = f"{path}[{i}]"
            if item is None:
                if not isinstance(values, list) or i >= len(values):
                    self.report(
                        "structure", "null is only allowed in an array aligned with its values", where
                    )
            elif not isinstance(item, dict):
                self.report(
                    "structure", f"_{field.key} items must be JSON objects (id, extension) or null", where
                )
            elif not item:
                self.report("structure", _EMPTY.format(what="object"), where)
            else:
                element.walker(self, item, where)

    # -- bindings and references -------------------------------------------------------------------

    def coded(self, value: dict[str, Any], field: Field, path: Where) -> None:
        """Required binding on a Coding or CodeableConcept: a coding from the value set's systems must
        carry one of its codes. Text-only concepts are let through (the binding cannot be checked)."""
        systems: dict[str, frozenset[str]] = field.systems  # type: ignore[assignment]
        if field.code == "Coding":
            candidates = [(value, path)]
        else:
            codings = value.get("coding")
            if not isinstance(codings, list):
                return
            candidates = [(c, (path, ".coding", i)) for i, c in enumerate(codings) if isinstance(c, dict)]
        if not candidates:
            return
        wrong: list[Where] = []
        for coding, where in candidates:
            system, code = coding.get("system"), coding.get("code")
            codes = systems.get(system) if system.__class__ is str else None
            if codes is not None:
                if code.__class__ is str and code in codes:
                    return
                wrong.append(where)
        for where in wrong:
            self.report(
                "code-invalid",
                f"{show(candidates[0][0].get('code'))} is not in the required value set {field.binding}"
                if len(candidates) == 1
                else f"code is not in the required value set {field.binding}",
                (where, ".code"),
            )
        if not wrong:
            self.report(
                "code-invalid",
                f"no coding from the required value set {field.binding} "
                f"(systems: {', '.join(sorted(systems))})",
                path,
            )

    def reference(self, ref: dict[str, Any], targets: frozenset[str] | None, path: Where) -> None:
        """A Reference's literal and type against each other and the types allowed here. A verdict without
        an issue is remembered: it depends on the literal, the type, the types allowed, the resource types
        known and whether conditional references are allowed, except for a local "#id" (the contained
        resources decide); a load names the same patients, providers and payers in claim after claim."""
        literal, declared = ref.get("reference"), ref.get("type")
        if (
            literal.__class__ is not str
            or len(literal) > _REMEMBERED_LITERAL
            or literal[:1] == "#"
            or (declared is not None and declared.__class__ is not str)
        ):
            self._reference(ref, targets, path)
            return
        key = (literal, declared, targets, self.resource_types, self.transaction)
        if key in _VALID_REFERENCES:
            return
        issues = len(self.issues)
        self._reference(ref, targets, path)
        if len(self.issues) == issues:
            if len(_VALID_REFERENCES) >= _REFERENCES_KEPT:
                _VALID_REFERENCES.clear()
            _VALID_REFERENCES[key] = None

    def _reference(self, ref: dict[str, Any], targets: frozenset[str] | None, path: Where) -> None:
        literal = ref.get("reference")
        declared = ref.get("type")
        if not isinstance(declared, str) or declared not in self.resource_types:
            declared = None
        found: str | None = None
        if isinstance(literal, str) and literal:  # a wrong type or empty string is already reported
            where = (path, ".reference")
            parsed = parse_reference(literal, self.resource_types)
            if isinstance(parsed, str):
                self.report("value", f"invalid reference {show(literal)}: {parsed}", where)
                return
            if parsed.form == LOCAL:
                found = self.local_reference(literal, where)
            else:
                found = parsed.resource_type
                if parsed.form == CONDITIONAL and not self.transaction:
                    self.report(
                        "value",
                        f"conditional reference {show(literal)} is only allowed in a transaction or batch",
                        where,
                    )
            if found is not None and targets is not None and found not in targets:
                self.report(
                    "invalid",
                    f"a reference to {found} is not allowed here (allowed: {', '.join(sorted(targets))})",
                    where,
                )
            if found is not None and declared is not None and declared != found:
                self.report(
                    "invalid",
                    f"Reference.type {declared} does not match the reference to {found}",
                    (path, ".type"),
                )
                return
        if declared is not None and found is None and targets is not None and declared not in targets:
            self.report(
                "invalid",
                f"a reference to {declared} is not allowed here (allowed: {', '.join(sorted(targets))})",
                (path, ".type"),
            )

    def local_reference(self, literal: str, where: Where) -> str | None:
        """ref-1: "#id" must name a contained resource of the same resource; "#" is the container."""
        frame = self.frame
        if literal == "#":
            if frame is not None and frame.current is not None:
                frame.referenced.add(frame.current)
            return None
        found = frame.by_id.get(literal[1:]) if frame is not None else None
        if found is None:
            self.report(
                "invariant", f"ref-1: {show(literal)} does not resolve to a contained resource", where
            )
            return None
        frame.referenced.add(found[0])  # type: ignore[union-attr]
        return found[1] or None


def _json_kind(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else type(value).__name__


def install_walkers(model: Model) -> None:
    """Give every node its generated walker (`walkers`); `walk_generic` stays the reference they are tested
    against, and walks what lies past `MAX_DEPTH`.

    A node's walker is made on its first walk: compiling the 438 small nodes' walkers alone took 0.15 s of
    every process's first validation (there are 671 nodes), and a process sees few of the 150 resource
    types (a claims load: one).
    The generated walkers call their children's walkers by name (`W<n>`) from their globals: a stub until
    the child's first walk, which then puts the child's walker in every generated walker's globals (nodes
    recurse: Extension in Extension, Questionnaire.item in itself)."""
    nodes = list(model.nodes.values())
    names = {id(node): f"W{i}" for i, node in enumerate(nodes)}
    shared: dict[str, Any] = {
        "MAX_DEPTH": MAX_DEPTH,
        "MAX_STRING": MAX_STRING,
        "INT32_MAX": INT32_MAX,
        "TOO_MANY": f"more than {MAX_OBJECTS} objects to check; validation stopped",
        "_TooCostly": _TooCostly,
        "invariants": invariants,
        "render": render,
        "walk_generic": _Validator.walk_generic,
        "general_key": _Validator.general_key,
    }
    walkers: dict[str, Any] = {}  # by name: the node's walker, or its stub until its first walk
    scopes: list[dict[str, Any]] = []  # the globals of the generated walkers made so far
    making = threading.Lock()

    def make(node: Node, name: str, stub: Any) -> Any:
        with making:
            if walkers[name] is not stub:  # made by another thread meanwhile
                return walkers[name]
            scope = dict(shared)
            walker = generate_walker(node, names, scope)
            scope.update(walkers)
            scopes.append(scope)
            walkers[name] = walker
            for other in scopes:
                other[name] = walker
            if node.walker is stub:
                node.walker = walker
            return walker

    def stub_of(node: Node, name: str) -> Any:
        def stub(self: _Validator, obj: dict[str, Any], path: Where) -> None:
            make(node, name, stub)(self, obj, path)

        return stub

    for node in nodes:
        name = names[id(node)]
        walkers[name] = node.walker = stub_of(node, name)
    model.walkers = True


def generic_walker(node: Node) -> Any:
    """A walker of `node` that is `walk_generic` (what the generated ones are compared with)."""
    generic = _Validator.walk_generic

    def walk(self: _Validator, obj: dict[str, Any], path: Where) -> None:
        generic(self, obj, node, path)

    return walk
