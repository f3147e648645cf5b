"""Layering of the library: no module imports, even inside a function, a module that imports it
back (evaluate -> inference -> training -> ... was such a cycle, and made `farside-gan evaluate`
load torch; the torch-free evaluate itself is tested in test_evaluate.py)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "farside_gan"


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
    assert "farside_gan.model.checkpoint" in graph["farside_gan.inference"]
    assert cycles(graph) == []


def test_the_cycle_check_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_cpu_stages_do_not_import_torch_modules():
    """What the CPU jobs import (fetch, prepare, manifest, evaluate, truth) reaches no module
    that imports torch."""
    graph = import_graph()
    torch_modules = {m for m, path in ((m, PACKAGE.parent / (m.replace(".", "/") + ".py"))
                                       for m in graph) if path.exists()
                     and "import torch" in path.read_text()}
    assert {"farside_gan.training", "farside_gan.inference",
            "farside_gan.model.checkpoint"} <= torch_modules
    for stage in ("farside_gan.download", "farside_gan.prepare", "farside_gan.dataset",
                  "farside_gan.evaluate", "farside_gan.synthetic.truth", "farside_gan.magnetogram"):
        reached, todo = set(), [stage]
        while todo:
            for m in graph[todo.pop()] - reached:
                reached.add(m)
                todo.append(m)
        assert not reached & torch_modules, (stage, reached & torch_modules)
