"""The documents name what exists: every library path in the README and docs/ is a file,
docs/ARCHITECTURE.md's package tables list exactly the library's modules, and the benchmark
results' index lists exactly the folders under benchmarks/results/."""

from __future__ import annotations

import re

from helpers import REPO

PACKAGE = REPO / "farside_gan"
RESULTS = REPO / "benchmarks" / "results"
DOCUMENTS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md"),
                    REPO / "benchmarks" / "README.md", RESULTS / "README.md"])

LIBRARY_PATH = re.compile(r"farside_gan/[\w/]*\w\.py")
RESULTS_PATH = re.compile(r"benchmarks/results/([\w.?*-]+)")  # a folder or a glob of folders
HEADING = re.compile(r"^### (.*)$", re.MULTILINE)


def library_paths(text: str) -> set[str]:
    return set(LIBRARY_PATH.findall(text))


def test_library_paths_named_in_the_documents_exist():
    missing = {f"{doc.relative_to(REPO)}: {path}"
               for doc in DOCUMENTS for path in library_paths(doc.read_text())
               if not (REPO / path).is_file()}
    assert not missing, sorted(missing)


def test_the_path_scan_finds_paths_and_only_whole_ones():
    text = "`farside_gan/prepare/align.py` and farside_gan/core/instruments.py, not farside_gan/"
    assert library_paths(text) == {"farside_gan/prepare/align.py",
                                   "farside_gan/core/instruments.py"}


def architecture_modules(text: str) -> dict[str, set[str]]:
    """Module files each '### `package/`' section's table names, as paths under farside_gan/.

    A section whose heading names no package (``plan.py`` ...) holds top-level modules. The
    module cell is the first of a table row; every backticked ``*.py`` in it counts.
    """
    sections = HEADING.split(text)[1:]
    named: dict[str, set[str]] = {}
    for heading, body in zip(sections[::2], sections[1::2], strict=True):
        package = next((t for t in re.findall(r"`([^`]+)`", heading) if t.endswith("/")), "")
        for row in re.findall(r"^\| ([^|]+) \|", body, re.MULTILINE):
            for name in re.findall(r"`([\w/]+\.py)`", row):
                named.setdefault(package, set()).add(package + name)
    return named


def test_architecture_lists_every_module_of_every_package():
    named = architecture_modules((REPO / "docs" / "ARCHITECTURE.md").read_text())
    listed = set().union(*named.values())
    actual = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")}
    required = {p for p in actual if not p.endswith("__init__.py")}
    assert listed - actual == set(), "named but not in farside_gan/"
    assert required - listed == set(), "in farside_gan/ but not in docs/ARCHITECTURE.md"
    packages = {p.name + "/" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages <= set(named), "a package without its table"


def test_the_architecture_scan_reads_headings_and_module_cells():
    text = ("### `core/`\n\n| module | owns |\n|---|---|\n| `errors.py` | x `fitsio.py` |\n"
            "### `plan.py` (top level)\n\n| `plan.py`, `__main__.py` | y |\n")
    assert architecture_modules(text) == {"core/": {"core/errors.py"},
                                          "": {"plan.py", "__main__.py"}}


def test_results_index_lists_every_results_folder():
    index = (RESULTS / "README.md").read_text()
    indexed = set(re.findall(r"^\| `([\w.-]+)` \|", index, re.MULTILINE))
    folders = {p.name for p in RESULTS.iterdir() if p.is_dir()}
    assert indexed == folders


def test_results_folders_named_in_the_documents_exist():
    missing = {f"{doc.relative_to(REPO)}: {name}"
               for doc in DOCUMENTS for name in RESULTS_PATH.findall(doc.read_text())
               if not any(RESULTS.glob(name))}
    assert not missing, sorted(missing)


def test_results_folder_names_carry_date_device_and_what():
    for folder in (p for p in RESULTS.iterdir() if p.is_dir()):
        assert re.fullmatch(r"\d{4}-\d\d-\d\d_(h100|h200|cpu2)_[a-z0-9-]+", folder.name), folder
