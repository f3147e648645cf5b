"""Layering of the library: the stage packages import only the stages below them, in the
pipeline's order; no module imports, even inside a function, a module that imports it back (a
cycle through inference once made `farside-gan evaluate` load torch; the torch-free evaluate
itself is tested in tests/unit/evaluation/test_evaluate.py)."""

from __future__ import annotations

import ast

from helpers import REPO

PACKAGE = REPO / "farside_gan"


def import_graph() -> dict[str, set[str]]:
    """Module -> the farside_gan modules it imports anywhere in its code."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("farside_gan"):
                for alias in node.names:
                    child = f"{node.module}.{alias.name}"
                    found.add(child if child in modules else node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("farside_gan")}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    graph = import_graph()
    assert "farside_gan.model.checkpoint" in graph["farside_gan.products.inference"]
    assert cycles(graph) == []


# The pipeline's stages, bottom up: a stage package may import its own modules and the stages
# below it, never one above.
STAGES = ("core", "config", "acquire", "prepare", "model", "training", "products", "evaluation")
# Beside the pipeline, what stands in for the Sun and for the outside world (archives, JSOC) may
# use what it imitates or must match; no stage imports them. On top: the command line and the
# plan of a whole run, which may use anything.
BESIDE = {"synthetic": {"core", "config", "prepare", "products"},
          "testing": {"core", "acquire", "synthetic"}}
TOP = {"cli", "plan", "__main__"}


def package_of(module: str) -> str:
    """'farside_gan.prepare.align' -> 'prepare'; a top-level module ('farside_gan.plan') -> its
    own name; the package itself -> ''."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def allowed(importer: str, imported: str) -> bool:
    if importer in TOP or importer == imported or imported == "":
        return True
    if importer in BESIDE:
        return imported in BESIDE[importer]
    if importer in STAGES and imported in STAGES:
        return STAGES.index(imported) < STAGES.index(importer)
    return False


def direction_violations(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{m} -> {i}" for m, imported in graph.items() for i in imported
                  if not allowed(package_of(m), package_of(i)))


def test_every_package_has_a_place_in_the_layers():
    packages = {package_of(m) for m in import_graph()} - {""}
    assert packages <= set(STAGES) | set(BESIDE) | TOP, packages - set(STAGES) - set(BESIDE) - TOP


def test_stages_import_only_the_stages_below_them():
    assert direction_violations(import_graph()) == []


def test_the_direction_check_sees_an_upward_import():
    graph = {"farside_gan.prepare.align": {"farside_gan.core.fitsio"},
             "farside_gan.core.fitsio": {"farside_gan.training.trainer"},
             "farside_gan.prepare.period": {"farside_gan.synthetic.field"},
             "farside_gan.cli.products": {"farside_gan.evaluation.evaluate"}}
    assert direction_violations(graph) == [
        "farside_gan.core.fitsio -> farside_gan.training.trainer",
        "farside_gan.prepare.period -> farside_gan.synthetic.field"]


def test_the_cycle_check_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_cpu_stages_do_not_import_torch_modules():
    """What the CPU jobs import (fetch, prepare, manifest, evaluate, truth) reaches no module
    that imports torch."""
    graph = import_graph()
    torch_modules = {m for m, path in ((m, PACKAGE.parent / (m.replace(".", "/") + ".py"))
                                       for m in graph) if path.exists()
                     and "import torch" in path.read_text()}
    assert {"farside_gan.training.trainer", "farside_gan.products.inference",
            "farside_gan.model.checkpoint"} <= torch_modules
    for stage in ("farside_gan.acquire.download", "farside_gan.prepare.period",
                  "farside_gan.prepare.manifest", "farside_gan.evaluation.evaluate",
                  "farside_gan.synthetic.truth", "farside_gan.products.magnetogram"):
        reached, todo = set(), [stage]
        while todo:
            for m in graph[todo.pop()] - reached:
                reached.add(m)
                todo.append(m)
        assert not reached & torch_modules, (stage, reached & torch_modules)
