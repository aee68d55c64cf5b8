"""FHIRPath for index extraction: compiled extractors for the common shapes, fhirpathpy for the rest.

Two evaluators give the same result (tests/fhir/search/test_extract.py checks it on every example instance):

* compiled extractors: plain Python closures for the expression shapes the R4 and IG SearchParameters
  use: dotted paths, ``|`` unions, parentheses, ``[n]``, ``where(field = 'literal')``,
  ``where(resolve() is Type)``, ``ofType(T)``, ``as(T)``, ``x as T`` and ``extension('url')``. Choice
  elements are resolved with the fhirpathpy R4 model, as fhirpathpy does (``Observation.effective`` reads
  ``effectiveDateTime``, ``effectivePeriod``, ...), and every item carries the FHIR type fhirpathpy would
  give its node;
* fhirpathpy (``fhirpathpy.compile`` with the R4 model and raw node data, cached per expression), for anything
  else and when forced (``force_fhirpathpy=True``).

Both evaluate the expression after :func:`~openpayer.fhir.search.registry.normalize_as` (``x as T`` read as
``x.ofType(T)``), and both answer ``resolve()`` without resolving: it yields the type named by the literal
reference (``Patient/1``, ``https://x/fhir/Patient/1``), or ``Reference.type`` when there is none, so
``where(resolve() is Patient)`` keeps the references that point at a Patient.

One more shape is compiled as a whole: ``X.exists() and X != false`` (Patient ``deceased``), a boolean.

Deliberate differences from fhirpathpy 2.2.4, none met by the example instances: ``extension(url)`` returns
every matching extension (FHIRPath; fhirpathpy returns the first); the compiled union does not de-duplicate
(index rows are de-duplicated afterwards); and a primitive present only as an extension (``_deceasedBoolean``
with no value) counts as absent, where fhirpathpy counts the extension holder as a value.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import fhirpathpy
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models as _fhirpath_models

from openpayer.fhir.search.registry import concrete_resource_types, normalize_as, split_union

log = logging.getLogger(__name__)

Node = tuple[Any, str | None]  # (JSON value, its FHIR type or element path as fhirpathpy names it)
Extractor = Callable[[Mapping[str, Any]], list[Node]]
_Step = Callable[[list[Node]], list[Node]]

R4_MODEL: dict[str, Any] = _fhirpath_models["r4"]
_PATH2TYPE: dict[str, str] = R4_MODEL["path2Type"]
_CHOICES: dict[str, list[str]] = R4_MODEL["choiceTypePaths"]
_ELSEWHERE: dict[str, str] = R4_MODEL["pathsDefinedElsewhere"]
_TYPE2PARENT: dict[str, str] = R4_MODEL["type2Parent"]


class UnsupportedExpression(ValueError):
    """The expression is outside the compiled subset; fhirpathpy evaluates it."""


# --- resolve() --------------------------------------------------------------------------------------------

LOCAL_REFERENCE = re.compile(r"([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?")
_ABSOLUTE_REF = re.compile(r"/([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$")


def reference_type(reference: Any) -> str | None:
    """The resource type a Reference points at, read from the reference itself (never resolved)."""
    if not isinstance(reference, dict):
        return None
    literal = reference.get("reference")
    if isinstance(literal, str) and literal and literal[0] != "#" and not literal.startswith("urn:"):
        match = _ABSOLUTE_REF.search(literal) if "://" in literal else LOCAL_REFERENCE.fullmatch(literal)
        if match and match.group(1) in concrete_resource_types():
            return match.group(1)
    declared = reference.get("type")
    if isinstance(declared, str) and declared:
        declared = declared.rsplit("/", 1)[-1]
        return declared if declared in concrete_resource_types() else None
    return None


def _fhirpathpy_resolve(inputs: list[Any]) -> list[ResourceNode]:
    out = []
    for item in inputs:
        rtype = reference_type(item)
        if rtype:
            out.append(ResourceNode.create_node({"resourceType": rtype}))
    return out


_FHIRPATHPY_OPTIONS = {"returnRawData": True, "userInvocationTable": {"resolve": {"fn": _fhirpathpy_resolve}}}


# --- the compiled subset ----------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<num>\d+)|(?P<id>[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)|(?P<op>[.()\[\]|=,]))"
)


def _tokenize(expression: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    expression = expression.rstrip()
    while pos < len(expression):
        match = _TOKEN.match(expression, pos)
        if match is None or match.end() == pos:
            raise UnsupportedExpression(f"cannot tokenise at {expression[pos:]!r}")
        kind = match.lastgroup or ""
        text = match.group(kind)
        if kind == "str":
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        elif kind == "id":
            text = text.strip("`")
        tokens.append((kind, text))
        pos = match.end()
    return tokens


def is_type(path: str, target: str) -> bool:
    """Whether a node of FHIR type (or element path) `path` is a `target`, as `ofType` and `is` decide."""
    return _is_type(path, target)


def _is_type(path: str, target: str) -> bool:
    """fhirpathpy's ``is``: walk the node type up the R4 type hierarchy."""
    if path.startswith("System."):
        return path[7:] == target
    name: str | None = "BackboneElement" if "." in path else path
    while name:
        if name == target:
            return True
        name = _TYPE2PARENT.get(name) or _PATH2TYPE.get(name)
    return False


def _member(key: str) -> _Step:
    # Per parent path: ("choice", [(json key, child type), ...]) or ("plain", child type).
    memo: dict[str, tuple[bool, Any]] = {}

    def plan(path: str) -> tuple[bool, Any]:
        child = _ELSEWHERE.get(f"{path}.{key}", f"{path}.{key}")
        choices = _CHOICES.get(child)
        if choices:
            return True, [(key + t, "_" + key + t, _PATH2TYPE.get(child + t, child + t)) for t in choices]
        if key == "extension":
            child = "Extension"
        return False, _PATH2TYPE.get(child, child)

    def step(nodes: list[Node]) -> list[Node]:
        out: list[Node] = []
        for data, path in nodes:
            if type(data) is not dict:
                continue
            entry = memo.get(path)  # type: ignore[arg-type]
            if entry is None:
                entry = memo[path] = plan(path)  # type: ignore[index,arg-type]
            is_choice, spec = entry
            if is_choice:
                for json_key, extension_key, choice_type in spec:
                    value = data.get(json_key)
                    # fhirpathpy also stops at a choice present only as a primitive extension (``_valueX``)
                    if value is not None or data.get(extension_key) is not None:
                        ctype = choice_type
                        break
                else:
                    continue
            else:
                value = data.get(key)
                ctype = spec
            if value is None:
                continue
            if ctype == "Resource":  # a nested resource is typed by its resourceType, as in fhirpathpy
                for item in value if type(value) is list else (value,):
                    if item is not None:
                        out.append((item, _resource_type(item)))
            elif type(value) is list:
                out.extend((item, ctype) for item in value if item is not None)
            else:
                out.append((value, ctype))
        return out

    step.member = key  # type: ignore[attr-defined]  # for `top_keys`
    step.plan = plan  # type: ignore[attr-defined]
    return step


def _resource_type(item: Any) -> str:
    rtype = item.get("resourceType") if type(item) is dict else None
    return rtype if isinstance(rtype, str) else "Resource"


def _root(type_name: str) -> _Step:
    def step(nodes: list[Node]) -> list[Node]:
        return [n for n in nodes if n[1] == type_name]

    step.root = type_name  # type: ignore[attr-defined]  # for `top_keys`
    return step


def _where_equals(key: str, literal: str) -> _Step:
    member = _member(key)

    def step(nodes: list[Node]) -> list[Node]:
        out = []
        for node in nodes:
            values = member([node])
            if len(values) == 1 and values[0][0] == literal:
                out.append(node)
        return out

    return step


def _where_resolve_is(type_name: str) -> _Step:
    def step(nodes: list[Node]) -> list[Node]:
        return [n for n in nodes if resolves_to(n[0], type_name)]

    step.resolve_is = type_name  # type: ignore[attr-defined]  # for a generated extraction
    return step


def resolves_to(reference: Any, type_name: str) -> bool:
    """`where(resolve() is type_name)` for one value: whether the reference's literal names such a type."""
    found = reference_type(reference)
    return found is not None and _is_type(found, type_name)


def _of_type(type_name: str) -> _Step:
    known: dict[str, bool] = {}  # node type -> whether it is a `type_name` (the hierarchy walked once)

    def step(nodes: list[Node]) -> list[Node]:
        out = []
        for node in nodes:
            path = node[1]
            if path is None:
                continue
            matches = known.get(path)
            if matches is None:
                matches = known[path] = _is_type(path, type_name)
            if matches:
                out.append(node)
        return out

    step.type_name = type_name  # type: ignore[attr-defined]  # for `top_keys`
    return step


def _extension(url: str) -> _Step:
    def step(nodes: list[Node]) -> list[Node]:
        out: list[Node] = []
        for data, _ in nodes:
            if type(data) is dict:
                out.extend((e, "Extension") for e in data.get("extension", ()) if e.get("url") == url)
        return out

    return step


def _index(n: int) -> _Step:
    return lambda nodes: nodes[n : n + 1]


def _chain(steps: list[_Step]) -> _Step:
    if len(steps) == 1:
        return steps[0]

    def run(nodes: list[Node]) -> list[Node]:
        for step in steps:
            nodes = step(nodes)
            if not nodes:
                break
        return nodes

    return run


def _union(branches: list[list[_Step]]) -> _Step:
    chains = [_chain(b) for b in branches]
    if len(chains) == 1:
        return chains[0]
    return lambda nodes: [n for chain in chains for n in chain(nodes)]


class _Parser:
    """Recursive descent over the compiled subset; anything else raises :class:`UnsupportedExpression`."""

    def __init__(self, expression: str) -> None:
        self.tokens = _tokenize(expression)
        self.pos = 0

    def peek(self, offset: int = 0) -> tuple[str, str]:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else ("end", "")

    def take(self, kind: str, text: str | None = None) -> str:
        tok_kind, tok_text = self.peek()
        if tok_kind != kind or (text is not None and tok_text != text):
            raise UnsupportedExpression(f"expected {text or kind}, found {tok_text!r}")
        self.pos += 1
        return tok_text

    def parse(self) -> list[list[_Step]]:
        branches = self.union()
        if self.peek()[0] != "end":
            raise UnsupportedExpression(f"unexpected {self.peek()[1]!r}")
        return branches

    def union(self) -> list[list[_Step]]:
        branches = [self.type_expression()]
        while self.peek() == ("op", "|"):
            self.pos += 1
            branches.append(self.type_expression())
        return branches

    def type_expression(self) -> list[_Step]:
        steps = self.postfix()
        while self.peek() == ("id", "as"):
            self.pos += 1
            steps.append(_of_type(self.take("id")))  # read as ofType(), see registry.normalize_as
        return steps

    def postfix(self) -> list[_Step]:
        steps = self.term()
        while True:
            if self.peek() == ("op", "."):
                self.pos += 1
                steps.append(self.invocation())
            elif self.peek() == ("op", "["):
                self.pos += 1
                steps.append(_index(int(self.take("num"))))
                self.take("op", "]")
            else:
                return steps

    def term(self) -> list[_Step]:
        if self.peek() == ("op", "("):
            self.pos += 1
            inner = self.union()
            self.take("op", ")")
            if len(inner) == 1:  # `(Type.a.ofType(T))`, as the R4 definitions write most: the path itself,
                return inner[0]  # so that it stays rooted (fused, and skipped when its keys are absent)
            return [_union(inner)]
        name = self.peek()[1]
        if self.peek()[0] == "id" and name[0].isupper() and self.peek(1) != ("op", "("):
            self.pos += 1
            if name not in concrete_resource_types():
                raise UnsupportedExpression(f"{name} is not a resource type")
            return [_root(name)]
        return [self.invocation()]

    def invocation(self) -> _Step:
        name = self.take("id")
        if self.peek() != ("op", "("):
            return _member(name)
        self.pos += 1
        if name in ("ofType", "as"):
            step = _of_type(self.take("id"))
        elif name == "extension":
            step = _extension(self.take("str"))
        elif name == "where" and self.peek() == ("id", "resolve"):
            self.pos += 1
            self.take("op", "(")
            self.take("op", ")")
            self.take("id", "is")
            step = _where_resolve_is(self.take("id"))
        elif name == "where" and self.peek(1) == ("op", "="):
            key = self.take("id")
            self.take("op", "=")
            step = _where_equals(key, self.take("str"))
        else:
            raise UnsupportedExpression(f"function {name}() is not compiled")
        self.take("op", ")")
        return step


# ``X.exists() and X != false`` (Patient-deceased, Person-deceased style): a boolean, true when X has a
# value other than a lone ``false``.
_EXISTS_NOT_FALSE = re.compile(r"([A-Za-z][A-Za-z0-9_.]*)\.exists\(\)\s+and\s+\1\s*!=\s*false")


def _exists_not_false(path: str) -> _Step:
    select = _union(_Parser(path).parse())

    def step(nodes: list[Node]) -> list[Node]:
        values = select(nodes)
        return [(bool(values) and not (len(values) == 1 and values[0][0] is False), None)]

    return step


def _top_keys(branches: list[list[_Step]]) -> frozenset[str] | None:
    """The properties of the resource one of which must be present for the branches to select anything,
    when every branch starts ``Type.member``; None otherwise."""
    keys: set[str] = set()
    for steps in branches:
        if len(steps) < 2:
            return None
        root, member = getattr(steps[0], "root", None), getattr(steps[1], "member", None)
        if root is None or member is None:
            return None
        is_choice, spec = steps[1].plan(root)  # type: ignore[attr-defined]
        if not is_choice:
            keys.add(member)
            continue
        # `value.ofType(Quantity)` selects only when the choice given is a Quantity: `valueQuantity`
        wanted = getattr(steps[2], "type_name", None) if len(steps) > 2 else None
        keys.update(key for key, _, ctype in spec if wanted is None or _is_type(ctype, wanted))
    return frozenset(keys)


@lru_cache(maxsize=8192)
def _compiled(expression: str) -> Extractor:
    boolean = _EXISTS_NOT_FALSE.fullmatch(expression.strip())
    rooted: tuple[str, list[list[_Step]]] | None = None
    if boolean:
        step, keys = _exists_not_false(boolean.group(1)), None  # false when absent: never skipped
    else:
        branches = _Parser(expression).parse()
        step, keys = _union(branches), _top_keys(branches)
        roots = {getattr(steps[0], "root", None) for steps in branches}
        if keys is not None and len(roots) == 1:  # every branch is `Type.member...` with the same Type
            rooted = (str(roots.pop()), [steps[1:] for steps in branches])

    def extract(resource: Mapping[str, Any]) -> list[Node]:
        return step([(resource, resource.get("resourceType"))])

    extract.top_keys = keys  # type: ignore[attr-defined]
    extract.rooted = rooted  # type: ignore[attr-defined]
    return extract


def rooted(extractor: Extractor, resource_type: str) -> _Step | None:
    """For an extractor whose every branch starts with `resource_type`: the steps after that root, to
    apply to ``[(resource, resource_type)]`` (the same values, without the root filter); else None.

    Each branch's leading member steps are fused into one walk over the JSON (`_members`): starting
    from the resource type, the FHIR type of every node they reach is known when compiling, unless a
    choice element or a nested resource comes first (there the fusion stops and the steps run as usual).
    """
    branches = rooted_branches(extractor, resource_type)
    return None if branches is None else _union(branches)


def rooted_branches(extractor: Extractor, resource_type: str) -> list[list[_Step]] | None:
    """The branches `rooted` unites, each with its leading member steps fused (a fused walk carries its
    `keys` and the FHIR type `ctype` of what it reaches: what a generated extraction needs to walk the
    same path inline); None where `rooted` gives None."""
    found: tuple[str, list[list[_Step]]] | None = getattr(extractor, "rooted", None)
    if found is None or found[0] != resource_type:
        return None
    return [_fused(steps, resource_type) for steps in found[1]]


def _fused(steps: list[_Step], path: str) -> list[_Step]:
    """`steps` applied to nodes of type `path`, with the leading member steps of a static type fused."""
    keys: list[str] = []
    for step in steps:
        key = getattr(step, "member", None)
        if key is None:
            break
        is_choice, ctype = step.plan(path)  # type: ignore[attr-defined]
        if is_choice or ctype == "Resource":
            break
        keys.append(key)
        path = ctype
    if not keys:
        return steps
    return [_members(tuple(keys), path), *steps[len(keys) :]]


def _members(keys: tuple[str, ...], ctype: str) -> _Step:
    """Member steps whose nodes all have a type known in advance (the last one's is `ctype`): the same
    values as `_member` steps, in the same order, walking the JSON without a type per node."""
    *inner, last = keys

    def step(nodes: list[Node]) -> list[Node]:
        values = [nodes[0][0]] if len(nodes) == 1 else [data for data, _ in nodes]
        for key in inner:
            found: list[Any] = []
            for data in values:
                if type(data) is dict:
                    value = data.get(key)
                    if value is None:
                        continue
                    if type(value) is list:
                        found += [item for item in value if item is not None]
                    else:
                        found.append(value)
            if not found:
                return []
            values = found
        out: list[Node] = []
        for data in values:
            if type(data) is dict:
                value = data.get(last)
                if value is None:
                    continue
                if type(value) is list:
                    out += [(item, ctype) for item in value if item is not None]
                else:
                    out.append((value, ctype))
        return out

    step.keys = keys  # type: ignore[attr-defined]  # for a generated extraction (`rooted_branches`)
    step.ctype = ctype  # type: ignore[attr-defined]
    return step


def top_keys(extractor: Extractor) -> frozenset[str] | None:
    """Properties of a resource one of which an extractor needs to select anything (None: unknown).
    A resource without any of them gives no values: extraction can skip the extractor."""
    return getattr(extractor, "top_keys", None)


@lru_cache(maxsize=8192)
def _fhirpathpy(expression: str) -> Extractor:
    # fhirpathpy's union drops node types (its distinct() rebuilds nodes), so the top-level branches are
    # evaluated one by one; rows are de-duplicated afterwards, which is what the union's distinct did.
    functions = [
        fhirpathpy.compile(branch, model=R4_MODEL, options=_FHIRPATHPY_OPTIONS)
        for branch in split_union(normalize_as(expression))
    ]

    def extract(resource: Mapping[str, Any]) -> list[Node]:
        out: list[Node] = []
        for fn in functions:
            for item in fn(resource, None):
                if isinstance(item, ResourceNode):
                    if item.data is not None:
                        out.append((item.data, item.path))
                elif item is not None:
                    out.append((item, None))
        return out

    return extract


def is_compiled(expression: str) -> bool:
    """Whether ``expression`` falls in the compiled subset (otherwise fhirpathpy evaluates it)."""
    try:
        _compiled(normalize_as(expression))
    except UnsupportedExpression:
        return False
    return True


def compile_expression(expression: str, *, force_fhirpathpy: bool = False) -> Extractor:
    """A function from a resource to the ``(value, FHIR type)`` items ``expression`` selects.

    Compiled when the expression is in the compiled subset, else (or when forced) fhirpathpy; cached.
    """
    expression = normalize_as(expression)
    if not force_fhirpathpy:
        try:
            return _compiled(expression)
        except UnsupportedExpression as exc:
            log.debug("FHIRPath %r evaluated by fhirpathpy: %s", expression, exc)
    return _fhirpathpy(expression)
