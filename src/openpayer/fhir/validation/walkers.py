"""Walkers generated per node for the structural validator (`structure._Validator`).

`_Validator.walk_generic` looks every property up in the node's fields and branches on the field's `fast`
kind. For every node (a datatype, a backbone element, a resource) a walker is generated once, on its first
walk: Python source with one branch per fast field, its key, FHIRPath step, checker and child walker
written in as constants, the node's required elements and invariant inlined, and every other key (unknown
keys, choices, arrays of primitives, bindings, references) handed to `general_key`, the same code
`walk_generic` runs for them; past `CHAIN_FIELDS` fast fields the branch is found by number. Issues, their
order and everything else are as `walk_generic`'s (tests/fhir/validation/test_fast_paths.py compares the
two on every example instance and on mutants). `structure.install_walkers` gives each node its walker;
this module writes their source.
"""

from __future__ import annotations

from typing import Any

import orjson

from openpayer.fhir.codecache import compiled
from openpayer.fhir.validation.model import (
    BOUND,
    CHECKED_OBJECT,
    GENERAL,
    MANY_OBJECTS,
    ONE_CODE,
    ONE_DECIMAL,
    ONE_INTEGER,
    ONE_OBJECT,
    ONE_PLAIN,
    ONE_STRING,
    ONE_URI,
    PRIMITIVE,
    Field,
    Node,
)

# Past this many fast fields a walker finds a key's branch by a dict lookup and a binary tree over the
# branches' numbers instead of an if-chain of string comparisons (a key compared with every fast field
# before it; an unknown or general key with all of them). Counted by callgrind (docs/performance.md,
# Loading, "Twenty-fourth session"): 10 beat 6, 20 and a chain for every node on both mixes.
CHAIN_FIELDS = 10
_RARE = ("id", "extension", "modifierExtension")  # tested last in a generated walker

# Nodes whose valid objects are remembered: small objects, the same ones over and over (a claim's
# adjudication and category CodeableConcepts, its Periods): an ExplanationOfBenefit has ~40
# CodeableConcepts, most of them seen in every claim. Such an object's verdict depends on its content alone
# (its binding is the parent's check, made every time). One walked without an issue is not walked again:
# its JSON text is looked up (~0.4 µs against ~2 µs for a CodeableConcept and its Coding). orjson's text
# keeps `true`, `1`, `1.0` and `"1"` apart. Not remembered: an object with an extension (which may hold a
# reference, whose verdict depends on where it is: a conditional one is valid in a transaction only) or a
# string starting with "#" (dom-3 counts those as it walks). A hit costs the validation budget what walking
# the object's children would have (the value: an expression of `obj`, else nothing), and happens only
# where those walks would not be too deep.
MEMO_NODES: dict[str, str | None] = {
    "Coding": None,
    "Period": None,
    "CodeableConcept": "len(obj.get('coding', ()))",
}
MEMO_SIZE = 8192  # valid objects remembered per node, then forgotten all at once
MEMO_TEXT = 1024  # longer objects are not remembered (a string may hold 1 MB: 8,192 of them would be 8 GB)


def remember(memo: dict[bytes, None], key: bytes) -> None:
    """Remember `key`, the JSON text of an object walked without an issue (unless, see above, it has an
    extension or a string starting with "#", or is long)."""
    if len(key) > MEMO_TEXT or b'"#' in key or b'xtension"' in key:
        return
    if len(memo) >= MEMO_SIZE:
        memo.clear()
    memo[key] = None


# Paths only a generated walker takes (`walk_generic` sends these fields to `general_key`, which does the
# same): a single code with a required binding, a single Reference, and any choice (`value[x]`) whose type
# has a fast path, its "more than one value" check made inline before it.
_ONE_BOUND = 100
_ONE_REFERENCE = 101


def _branch_kind(field: Field) -> int:
    """The path a generated walker takes for `field`: its `fast` kind, or one of the paths above."""
    if field.fast != GENERAL or field.max == 0:
        return field.fast
    kind = field.typed_fast() if field.choice is not None else GENERAL
    if kind == GENERAL and not field.array:
        if field.route == BOUND:
            kind = _ONE_BOUND
        elif field.route == CHECKED_OBJECT and field.code == "Reference" and field.systems is None:
            kind = _ONE_REFERENCE
    return kind


def _choice_lines(field: Field, j: int, node: Node, consts: dict[str, Any]) -> list[str]:
    """`general_key`'s bookkeeping of a choice: the first `value[x]` key seen, or an issue for another."""
    consts[f"X{j}"] = field.choice
    consts[f"M{j}"] = f"{node.choices[field.choice]} has more than one value: "  # type: ignore[index]
    return [
        "    if seen is None:",
        f"        seen = {{X{j}: key}}",
        f"    elif X{j} in seen:",
        f"        self.report('structure', M{j} + seen[X{j}] + ' and ' + key, (path, {field.dot!r}))",
        "    else:",
        f"        seen[X{j}] = key",
    ]


def _generated_branch(field: Field, j: int, child: str, fast: int) -> list[str]:
    """The lines that handle `key == field.key` (indented for the loop body), ending in `continue`."""
    dot = repr(field.dot)
    where = f"(path, {dot})"
    shape = [
        "    if value.__class__ is list or value is None:",
        f"        self.bad_shape(F{j}, value, {where})",
        "    else:",
        f"        problem = C{j}(value)",
        "        if problem is not None:",
        f"            self.report(problem[0], problem[1], {where})",
        "    continue",
    ]
    misfit = [  # not the quick shape: a wrong shape, or the general check of the value
        "    if value is None or value.__class__ is list:",
        f"        self.bad_shape(F{j}, value, {where})",
        "    else:",
        f"        self.value(value, F{j}, {where})",
        "    continue",
    ]
    if fast == _ONE_BOUND:
        return [f"    if value.__class__ is str and value in K{j}:", "        continue", *misfit]
    if fast == _ONE_REFERENCE:
        return [
            "    if value.__class__ is dict and value:",
            f"        {child.format(obj='value', where=where)}",
            f"        self.reference(value, T{j}, {where})",
            "    elif value is None or value.__class__ is list:",
            f"        self.bad_shape(F{j}, value, {where})",
            "    else:",
            f"        self.value(value, F{j}, {where})",
            "    continue",
        ]
    if fast == ONE_STRING:
        quick = "value.__class__ is str and value and len(value) <= MAX_STRING"
        return [f"    if {quick}:", "        continue", *shape]
    if fast == ONE_CODE:
        quick = "value.__class__ is str and value and value.isprintable() and ' ' not in value"
        return [f"    if {quick}:", "        continue", *shape]
    if fast == ONE_DECIMAL:
        return ["    if value.__class__ is int or value.__class__ is float:", "        continue", *shape]
    if fast == ONE_INTEGER:
        quick = f"value.__class__ is int and {field.low} <= value <= INT32_MAX"
        return [f"    if {quick}:", "        continue", *shape]
    if fast == ONE_PLAIN:
        return shape
    if fast == ONE_URI:
        return [
            "    if value.__class__ is str and value and value.isprintable() and ' ' not in value:",
            "        if value[0] == '#':",
            "            self.refer(value)",
            "        continue",
            *misfit,
        ]
    if fast == ONE_OBJECT:
        return [
            "    if value.__class__ is dict and value:",
            f"        {child.format(obj='value', where=where)}",
            "    elif value is None or value.__class__ is list:",
            f"        self.bad_shape(F{j}, value, {where})",
            "    else:",
            f"        self.value(value, F{j}, {where})",
            "    continue",
        ]
    if fast == MANY_OBJECTS:
        return [
            "    if value.__class__ is not list or not value:",
            f"        self.bad_shape(F{j}, value, {where})",
            "        continue",
            "    for i, item in enumerate(value):",
            "        if item.__class__ is dict and item:",
            f"            {child.format(obj='item', where=f'(path, {dot}, i)')}",
            "        elif item is None:",
            f"            self.null_item(obj, {field.key!r}, i, (path, {dot}))",
            "        else:",
            f"            self.value(item, F{j}, (path, {dot}, i))",
            "    continue",
        ]
    raise AssertionError(f"no generated branch for fast kind {fast}")


def _branch_tree(branches: list[list[str]], low: int, high: int, indent: str) -> list[str]:
    """The branches `low`..`high - 1`, chosen by `j` in a binary tree: every branch ends in `continue`, so
    the upper half follows the lower one's `if` without an `else`."""
    if high - low == 1:
        return [indent + line[4:] for line in branches[low]]
    middle = (low + high) // 2
    lower = _branch_tree(branches, low, middle, indent + "    ")
    return [f"{indent}if j < {middle}:", *lower, *_branch_tree(branches, middle, high, indent)]


def _generated_source(node: Node, names: dict[int, str], consts: dict[str, Any]) -> str:
    """Source of `def walk(self, obj, path)` for `node` (see the comment above)."""
    consts["NODE"] = node
    lines = ["def walk(self, obj, path):"]
    memo = node.name in MEMO_NODES
    if memo:
        # Looked up before the depth and the budget are counted: a hit counts both at once, as walking the
        # object would (one for it, `children` for its children), where that walk would not be too deep.
        consts["MEMO"], consts["remember"], consts["dumps"] = {}, remember, orjson.dumps
        children = MEMO_NODES[node.name]
        lines += [
            "    try:",
            "        text = dumps(obj)",
            "    except TypeError:  # not JSON (a key that is not a string, a value of another type): walked",
            "        text = None",
            "    else:",
            "        if text in MEMO and self.depth < MAX_DEPTH - 1:  # walked before without an issue",
            f"            self.budget -= {'1' if children is None else f'1 + {children}'}",
            "            if self.budget < 0:",
            "                raise _TooCostly(TOO_MANY)",
            "            return",
        ]
    lines += [
        "    if self.depth >= MAX_DEPTH:",
        "        return walk_generic(self, obj, NODE, path)  # reports the depth once",
        "    self.depth += 1",
        "    self.budget -= 1",
        "    if self.budget < 0:",
        "        raise _TooCostly(TOO_MANY)",
    ]
    if memo:
        lines.append("    issues = len(self.issues)")
    lines += [
        "    seen = None",
        "    for key, value in obj.items():",
    ]
    kinds = {field.key: _branch_kind(field) for field in node.fields.values()}
    fast = [f for f in node.fields.values() if kinds[f.key] != GENERAL]
    fast.sort(key=lambda f: f.key in _RARE)
    branches: list[list[str]] = []
    for j, field in enumerate(fast):
        consts[f"F{j}"] = field
        if field.kind == PRIMITIVE:
            consts[f"C{j}"] = field.check
        consts[f"K{j}"], consts[f"T{j}"] = field.codes, field.targets
        child = ""  # the call that walks a child object: its generated walker
        if field.node is not None:
            child = names[id(field.node)] + "(self, {obj}, {where})"
        branch = _generated_branch(field, j, child, kinds[field.key])
        branches.append(branch if field.choice is None else _choice_lines(field, j, node, consts) + branch)
    general = "seen = general_key(self, obj, NODE, key, value, path, seen, FIELDS.get(key))"
    if len(fast) > CHAIN_FIELDS:
        consts["BRANCH"] = {field.key: j for j, field in enumerate(fast)}
        lines += [
            "        j = BRANCH.get(key)",
            "        if j is None:",
            f"            {general}",
            "            continue",
        ]
        lines += _branch_tree(branches, 0, len(branches), "        ")
    else:
        for j, field in enumerate(fast):
            lines.append(f"        {'if' if j == 0 else 'elif'} key == {field.key!r}:")
            lines += ["        " + line for line in branches[j]]
        lines.append(f"        {general}")
    consts["FIELDS"] = node.fields
    for r, (name, keys) in enumerate(node.required):
        base = name[:-3] if name.endswith("[x]") else name
        consts[f"R{r}"] = (f"missing required element {name}", "." + base)
        absent = " and ".join(f"{key!r} not in obj" for key in keys)
        lines += [f"    if {absent}:", f"        self.report('required', R{r}[0], (path, R{r}[1]))"]
    if node.special == "Extension":
        lines.append("    invariants.extension(obj, path, self.report)")
    elif node.special == "Bundle":
        lines.append("    invariants.bundle(obj, render(path), self.report)")
    elif node.special == "Observation":
        lines.append("    invariants.observation(obj, render(path), self.report)")
    if memo:
        lines += ["    if text is not None and len(self.issues) == issues:", "        remember(MEMO, text)"]
    lines.append("    self.depth -= 1")
    return "\n".join(lines) + "\n"


def generate_walker(node: Node, names: dict[int, str], scope: dict[str, Any]) -> Any:
    """The generated walker of `node` (its globals are `scope`)."""
    source = _generated_source(node, names, scope)
    exec(compiled(source, f"<validator walk of {node.name}>"), scope)  # noqa: S102 - our own source
    return scope["walk"]
