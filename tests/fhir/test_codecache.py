"""The generated code's compile cache: entries written where Python keeps bytecode, read back by later
processes, never stale (the key is the whole text), and any trouble with the disk only means compiling."""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from tests.conftest import shared_path

from openpayer.fhir import codecache

SOURCE = "def answer():\n    return 42\n"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(sys, "pycache_prefix", str(tmp_path / "prefix"))
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    return codecache.cache_directory()


def run(code: object) -> object:
    namespace: dict[str, object] = {}
    exec(code, namespace)  # type: ignore[call-overload]
    return namespace["answer"]()  # type: ignore[operator]


def test_an_entry_is_written_under_the_bytecode_prefix_and_read_back(cache: Path) -> None:
    assert str(cache).startswith(sys.pycache_prefix or "")
    first = codecache.compiled(SOURCE, "<test>")
    assert run(first) == 42
    [entry] = cache.iterdir()
    assert entry.name.endswith(f".{sys.implementation.cache_tag}.bin")
    # What is read is the entry, not a new compilation: an entry swapped for other code is what comes back.
    entry.write_bytes(marshal.dumps(compile("def answer():\n    return 7\n", "<test>", "exec")))
    assert run(codecache.compiled(SOURCE, "<test>")) == 7


def test_a_different_text_or_name_is_a_different_entry(cache: Path) -> None:
    codecache.compiled(SOURCE, "<test>")
    codecache.compiled(SOURCE.replace("42", "43"), "<test>")
    codecache.compiled(SOURCE, "<other>")
    assert len(list(cache.iterdir())) == 3
    assert codecache.compiled(SOURCE, "<other>").co_filename == "<other>"


def test_a_damaged_entry_is_compiled_again_and_replaced(cache: Path) -> None:
    codecache.compiled(SOURCE, "<test>")
    [entry] = cache.iterdir()
    for damage in (b"", b"\x00garbage", marshal.dumps("not code")):
        entry.write_bytes(damage)
        assert run(codecache.compiled(SOURCE, "<test>")) == 42
        assert marshal.loads(entry.read_bytes()).co_filename == "<test>"


def test_nothing_is_written_when_bytecode_is_not(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    assert run(codecache.compiled(SOURCE, "<test>")) == 42
    assert not cache.exists()


def test_a_directory_in_the_way_only_means_compiling(cache: Path) -> None:
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"a file where the directory goes")  # not even root can write through a file
    assert run(codecache.compiled(SOURCE, "<test>")) == 42
    assert cache.read_bytes() == b"a file where the directory goes"


PROBE = """
import builtins, sys, orjson
from pathlib import Path
if sys.argv[1] == "cached":
    def refuse(source, filename, *args, **kwargs):
        if filename.startswith(("<validator walk", "<extraction of")):
            raise AssertionError(f"compiled again: {filename}")
        return original(source, filename, *args, **kwargs)
    original, builtins.compile = builtins.compile, refuse
from openpayer.fhir.search.extract import extract_index
from openpayer.fhir.validation.structure import validate_resource
eob = orjson.loads(Path(sys.argv[2]).read_bytes().removeprefix(b"\\xef\\xbb\\xbf"))
issues = validate_resource(eob)
rows = extract_index(eob)
counts = [len(rows.references), len(rows.tokens), len(rows.dates)]
print(orjson.dumps([[str(i) for i in issues], *counts]).decode())
"""


def test_a_later_process_validates_and_indexes_without_compiling(tmp_path: Path) -> None:
    """The first process writes the entries; the second, its `compile` refusing the generated code, gets
    the same issues and index rows from them."""
    example = shared_path("ig", "carin-bb-2.0.0", "example", "ExplanationOfBenefit-EOBInpatient1.json")
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(tmp_path / "prefix")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)

    def probe(mode: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", PROBE, mode, str(example)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    first = probe("first")
    assert len(list((tmp_path / "prefix").rglob("*.bin"))) > 2  # walkers of several nodes, the extraction
    assert probe("cached") == first
    issues, references, tokens, dates = orjson.loads(first)
    assert issues == []
    assert min(references, tokens, dates) > 0
