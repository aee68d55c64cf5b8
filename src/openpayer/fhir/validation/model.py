"""The runtime element trees the structural validator walks, built once from the structure index.

One `Node` per resource type, datatype and backbone element, mapping each JSON property name to a
`Field` (``valueQuantity`` is its own key, so a choice type costs one dict lookup). Fields point at
their child nodes directly; recursion (Extension inside Extension, ``Questionnaire.item.item``) is
just a cycle in this graph.
"""

from __future__ import annotations

import threading
from typing import Any

from openpayer.fhir.validation.builder import read_vendored_index
from openpayer.fhir.validation.primitives import CHECKERS, INT32_MIN, URI_TYPES, Checker, Problem

PRIMITIVE = 0
COMPLEX = 1
RESOURCE = 2

# Field.route: how the walker's inline fast path handles a value (derived from kind and extras).
PLAIN = 0  # primitive, lexical check only
BOUND = 1  # primitive with a required binding (membership implies a valid lexical form)
URI = 2  # uri/url/canonical: "#id" values count for dom-3
OBJECT = 3  # complex, walk only
CHECKED_OBJECT = 4  # complex, walk then binding / reference checks
NESTED_RESOURCE = 5

# Field.fast: the walker's shortest paths (no choice, no max 0 and, for arrays, no upper bound)
GENERAL = 0
ONE_PLAIN = 1  # a single primitive, lexical check only
ONE_OBJECT = 2  # a single complex value, walk only
MANY_OBJECTS = 3  # an array of complex values, walk only
# Single primitives whose commonest valid values the walker recognises inline, without calling the checker
# (any other value goes through the checker, as for ONE_PLAIN / the general path):
ONE_STRING = 4  # string: a non-empty str of at most 1 MB
ONE_CODE = 5  # code without a binding: a non-empty printable str without a space
ONE_URI = 6  # uri/url/canonical: as ONE_CODE, then "#id" counts for dom-3
ONE_DECIMAL = 7  # decimal: an int or a float (not a bool)
ONE_INTEGER = 8  # integer/positiveInt/unsignedInt: an int from Field.low to 2**31 - 1

# Nodes with invariants checked after their properties (see `invariants`).
SPECIAL_NODES = frozenset({"Extension", "Bundle", "Observation"})


def _not_primitive(value: object) -> Problem | None:
    raise AssertionError("only primitive fields are checked with Field.check")


# Checkers whose verdict on the commonest values the walker computes inline (`primitives` states the rules:
# `check_string`, the `no_space_ok` checkers, `check_decimal`, `_integer_checker`).
_QUICK = {
    "string": ONE_STRING,
    "code": ONE_CODE,
    "uri": ONE_CODE,
    "url": ONE_CODE,
    "canonical": ONE_CODE,
    "decimal": ONE_DECIMAL,
    "integer": ONE_INTEGER,
    "positiveInt": ONE_INTEGER,
    "unsignedInt": ONE_INTEGER,
}
_INTEGER_LOW = {"integer": INT32_MIN, "positiveInt": 1, "unsignedInt": 0}


class Field:
    """One JSON property of a node, with everything needed to check its value."""

    __slots__ = (
        "array",
        "binding",
        "check",
        "choice",
        "code",
        "codes",
        "contained",
        "dot",
        "expected",
        "ext_ok",
        "fast",
        "key",
        "kind",
        "low",
        "max",
        "name",
        "node",
        "route",
        "systems",
        "targets",
        "uri",
    )

    def __init__(self, key: str, name: str, code: str) -> None:
        self.key = key
        self.dot = "." + key  # the step of a FHIRPath expression to this property
        self.name = name  # element name as defined, e.g. "value[x]"
        self.code = code  # FHIR type code, e.g. "Quantity"
        self.kind = PRIMITIVE
        self.array = False
        self.max: int | None = None
        self.node: Node | None = None
        self.check: Checker = _not_primitive
        self.choice: str | None = None  # choice base name ("value") when this key is one of value[x]
        self.codes: frozenset[str] | None = None  # required binding on a code
        self.systems: dict[str, frozenset[str]] | None = None  # required binding on Coding/CodeableConcept
        self.binding: str | None = None  # the required value set's URL, for diagnostics
        self.targets: frozenset[str] | None = None  # allowed Reference target types; None = any
        self.expected: str | None = None  # resource type required for a resource-typed element
        self.contained = False  # DomainResource.contained
        self.ext_ok = False  # may have a `_key` sibling
        self.uri = False  # uri/url/canonical: "#id" values count as local references
        self.route = PLAIN
        self.fast = GENERAL
        self.low = 0  # ONE_INTEGER: the smallest valid value

    def finish(self) -> None:
        if self.kind == RESOURCE:
            self.route = NESTED_RESOURCE
        elif self.kind == COMPLEX:
            self.route = CHECKED_OBJECT if self.systems is not None or self.code == "Reference" else OBJECT
        elif self.codes is not None:
            self.route = BOUND
        elif self.uri:
            self.route = URI

    def set_fast(self) -> None:
        """The walker's shortest paths, for the most common fields (once `choice` is known)."""
        self.fast = GENERAL if self.choice is not None else self.typed_fast()

    def typed_fast(self) -> int:
        """The shortest path for a field of this type and cardinality, whether or not it is a choice."""
        if self.max == 0:
            return GENERAL
        if not self.array and self.route == PLAIN:
            self.low = _INTEGER_LOW.get(self.code, 0)
            fast = _QUICK.get(self.code, ONE_PLAIN)
            return ONE_PLAIN if fast == ONE_CODE and self.code != "code" else fast  # uri & co. have route URI
        if not self.array and self.route == URI and _QUICK.get(self.code) == ONE_CODE:
            return ONE_URI
        if not self.array and self.route == OBJECT:
            return ONE_OBJECT
        if self.array and self.max is None and self.route == OBJECT:
            return MANY_OBJECTS
        return GENERAL


class Node:
    """A resource type, datatype or backbone element: the JSON properties an object may have."""

    __slots__ = ("choices", "fields", "is_resource", "name", "required", "special", "walker")

    def __init__(self, name: str, is_resource: bool) -> None:
        self.name = name
        self.is_resource = is_resource
        self.special = name if name in SPECIAL_NODES else None
        self.fields: dict[str, Field] = {}
        self.required: tuple[tuple[str, tuple[str, ...]], ...] = ()
        self.choices: dict[str, str] = {}  # choice base name -> element name, for diagnostics
        # (validator, obj, path) -> None: the walk of an object of this node (`structure.install_walkers`)
        self.walker: Any = None


class Model:
    def __init__(self, resource_types: frozenset[str], nodes: dict[str, Node]) -> None:
        self.resource_types = resource_types
        self.nodes = nodes
        self.resources = {name: nodes[name] for name in resource_types}
        self.element = nodes["Element"]  # the `_birthDate` object: id and extension
        self.walkers = False  # whether `structure.install_walkers` has given each node its walker


def _field(element: dict[str, Any], type_ref: dict[str, Any], key: str, ctx: _BuildContext) -> Field:
    code = type_ref["code"]
    field = Field(key, element["name"], code)
    field.array = element["array"]
    field.max = element["max"]
    node_name = type_ref.get("node")
    if node_name is not None:
        field.kind = COMPLEX
        field.node = ctx.nodes[node_name]
    elif code == "Resource" or code in ctx.resource_types:
        field.kind = RESOURCE
        field.expected = None if code == "Resource" else code
        field.contained = element["name"] == "contained"
    else:
        if code not in CHECKERS:
            raise ValueError(f"no checker for primitive type {code!r} of {element['name']!r}")
        field.check = CHECKERS[code]
        field.ext_ok = bool(element.get("primitiveExtension")) and code != "xhtml"
        field.uri = code in URI_TYPES
    if "targets" in type_ref:
        field.targets = frozenset(type_ref["targets"])
    binding = element.get("binding")
    if binding is not None:
        expansion = ctx.value_sets[binding]
        field.binding = binding
        if code == "code":
            field.codes = frozenset(c for codes in expansion.values() for c in codes)
        elif code in ("Coding", "CodeableConcept"):
            field.systems = {system: frozenset(codes) for system, codes in expansion.items()}
    field.finish()
    return field


class _BuildContext:
    def __init__(self, index: dict[str, Any]) -> None:
        self.resource_types = frozenset(index["resourceTypes"])
        self.value_sets: dict[str, dict[str, list[str]]] = index["valueSets"]
        self.nodes = {name: Node(name, spec["kind"] == "resource") for name, spec in index["nodes"].items()}


def build_model(index: dict[str, Any]) -> Model:
    """Turn the JSON structure index into linked `Node`s."""
    ctx = _BuildContext(index)
    for name, spec in index["nodes"].items():
        node = ctx.nodes[name]
        required: list[tuple[str, tuple[str, ...]]] = []
        for element in spec["elements"]:
            elem_name: str = element["name"]
            fields: list[Field] = []
            if elem_name.endswith("[x]"):
                base = elem_name[:-3]
                node.choices[base] = elem_name
                for type_ref in element["types"]:
                    code = type_ref["code"]
                    field = _field(element, type_ref, base + code[0].upper() + code[1:], ctx)
                    field.choice = base
                    fields.append(field)
            else:
                fields.append(_field(element, element["types"][0], elem_name, ctx))
            for field in fields:
                field.set_fast()
                node.fields[field.key] = field
            if element["min"] > 0:
                # An extension-only primitive (`"_status": {...}`) is present too (R4 §2.6.2).
                keys = [f.key for f in fields] + ["_" + f.key for f in fields if f.ext_ok]
                required.append((elem_name, tuple(keys)))
        node.required = tuple(required)
    return Model(ctx.resource_types, ctx.nodes)


_lock = threading.Lock()
_model: Model | None = None


def get_model() -> Model:
    """The model, built on first use from the vendored index (~0.05 s), then shared."""
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                _model = build_model(read_vendored_index())
    return _model
