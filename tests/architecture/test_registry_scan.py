"""The instrument registry (``farside_gan.core.instruments``) is the one place where
instruments, their channels, observers, series and header identities are spelled: a scan of the
library and the workflow finds them nowhere else.

The scan reads the code, not the prose: string and integer literals of the library and the
workflow (docstrings, comments and messages that merely mention an instrument are fine). Files
allowed to spell instruments themselves, and why:

* ``farside_gan/core/instruments.py``: the registry.
* ``farside_gan/synthetic/instruments.py``, ``euv.py``, ``archive.py`` and
  ``farside_gan/testing/bad_files.py``: they stand in for the real instruments (headers,
  emission per channel, each instrument's files, bad files of each kind) and write what the real
  files hold; deriving those from the registry would let a registry mistake pass every test
  unseen.
* ``farside_gan/testing/fake_jsoc.py``: stands in for JSOC, a service outside the pipeline
  that names its series and segments itself; the same reason.
* the tests (not scanned): they check the registry from outside.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from helpers import REPO

from farside_gan.core import instruments as layout

ALLOWED = {"farside_gan/core/instruments.py", "farside_gan/synthetic/instruments.py",
           "farside_gan/synthetic/euv.py", "farside_gan/synthetic/archive.py",
           "farside_gan/testing/bad_files.py", "farside_gan/testing/fake_jsoc.py"}


def registry_words() -> set[str]:
    """Every name the registry spells (upper case): keys, observers, labels, series, header
    identities, VSO attributes, channel names."""
    words = set()
    for i in layout.INSTRUMENT_LIST:
        words |= {i.key, i.observer, i.label, i.series, i.camera, i.observatory, *(i.vso or ())}
        words |= {str(c) for c in i.channels if not str(c).isdigit()}
    return {w.upper() for w in words}


CHANNEL_NUMBERS = {c for i in layout.INSTRUMENT_LIST for c in i.channels if isinstance(c, int)}


def _docstrings(tree) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                ids.add(id(body[0].value))
    return ids


def _parts(text: str) -> list[str]:
    """A code-like string (no spaces: a value, a path, alternatives) in its parts; prose (with
    spaces: a message, a help text) only as a whole."""
    return [text] if re.search(r"\s", text.strip()) else re.split(r"[|/,{}]", text)


def python_spellings(path: Path, words: set[str]) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or id(node) in docs:
            continue
        value = node.value
        if isinstance(value, str) and any(part.strip().upper() in words
                                          for part in _parts(value)):
            found.append(f"{path.relative_to(REPO)}:{node.lineno}: {value!r}")
        elif type(value) is int and value in CHANNEL_NUMBERS:
            found.append(f"{path.relative_to(REPO)}:{node.lineno}: {value!r}")
    return found


def workflow_spellings(path: Path, words: set[str]) -> list[str]:
    found = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        code = line.split("#", 1)[0]
        for literal in re.findall(r"\"([^\"]*)\"|'([^']*)'", code):
            text = "".join(literal)
            if any(p.strip().upper() in words for p in _parts(text)):
                found.append(f"{path.relative_to(REPO)}:{lineno}: {text!r}")
        for number in re.findall(r"\b\d+\b", code):
            if int(number) in CHANNEL_NUMBERS:
                found.append(f"{path.relative_to(REPO)}:{lineno}: {number}")
    return found


def test_instruments_and_channels_are_spelled_only_in_the_registry():
    words = registry_words()
    assert {"AIA", "HMI", "EUVI_A", "SDO", "STEREO_B", "AIA.LEV1_EUV_12S", "MAGNETOGRAM"} <= words
    found = []
    for path in sorted((REPO / "farside_gan").rglob("*.py")):
        if str(path.relative_to(REPO)) not in ALLOWED:
            found += python_spellings(path, words)
    for path in [REPO / "workflow/Snakefile", *sorted((REPO / "workflow/rules").glob("*.smk"))]:
        found += workflow_spellings(path, words)
    for path in sorted((REPO / "workflow/scripts").glob("*.py")):
        found += python_spellings(path, words)
    assert not found, "instrument names or channels spelled outside farside_gan/core/instruments.py:\n" + \
        "\n".join(found)


def test_the_scan_sees_a_spelled_instrument(tmp_path):
    """The scan is not blind: the spellings it must catch, in code and in rules."""
    words = registry_words()
    module = tmp_path / "m.py"
    module.write_text('"""Docstrings may say aia."""\nx = "aia"\ny = ("euvi_a", 195)\n'
                      'z = f"results/{x}/sdo/"\nw = "SDO/HMI"\nv = "prose about AIA is fine"\n')
    rules = tmp_path / "r.smk"
    rules.write_text('wildcard_constraints:\n    observer="sdo|stereo_a",\n'
                     'x = prepared_dirs("hmi")  # a comment may say "aia"\n')
    global REPO
    saved, REPO = REPO, tmp_path
    try:
        assert sorted(f.split(": ", 1)[1] for f in python_spellings(module, words)) == \
            sorted(["'aia'", "'euvi_a'", "195", "'/sdo/'", "'SDO/HMI'"])
        assert [f.split(": ", 1)[1] for f in workflow_spellings(rules, words)] == \
            ["'sdo|stereo_a'", "'hmi'"]
    finally:
        REPO = saved
