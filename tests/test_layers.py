"""The layers of zoolens (ARCHITECTURE.md): imports point downward only, and there are no cycles.

Every ``import`` in every module counts, at module top or inside a function: a lazy import
is still a dependency. Layers, bottom to top:

0. ``zoolens`` (the package root: version and lazy names), ``errors``, ``progress``,
   ``contracts``
1. ``measure`` (pure array functions), ``zoo`` (the store) — neither imports the other
2. ``collect``, ``study`` (orchestration)
3. ``report`` (reads tables: imports neither ``study``, ``zoo`` nor ``collect``), ``demo``,
   ``deploy``, ``cli``
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import zoolens

SRC = Path(zoolens.__file__).parent
LAYERS = {
    "zoolens": 0,
    "errors": 0,
    "progress": 0,
    "contracts": 0,
    "examples": 0,
    "measure": 1,
    "zoo": 1,
    "collect": 2,
    "study": 2,
    "report": 3,
    "demo": 3,
    "deploy": 3,
    "cli": 3,
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = SRC.parent / Path(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def import_graph() -> dict[str, set[str]]:
    """module -> the zoolens modules it imports (``from pkg import module`` names the module)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in SRC.rglob("*.py"):
        module = _module_name(path)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                graph[module].update(a.name for a in node.names if a.name.startswith("zoolens"))
            elif isinstance(node, ast.ImportFrom):
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = (
                    (base + "." + node.module if node.module else base)
                    if node.level
                    else (node.module or "")
                )
                if name.split(".")[0] != "zoolens":
                    continue
                graph[module].add(name)
                graph[module].update(
                    f"{name}.{a.name}" for a in node.names if _is_module(f"{name}.{a.name}")
                )
        graph[module].discard(module)
    return graph


def group(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "zoolens"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes, or None (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_every_package_has_a_layer():
    packages = {group(m) for m in import_graph()}
    assert packages <= set(LAYERS), f"no layer for {sorted(packages - set(LAYERS))}"


def test_no_module_imports_one_above_it():
    upward = sorted(
        f"{m} -> {t}"
        for m, targets in import_graph().items()
        for t in targets
        if LAYERS[group(t)] > LAYERS[group(m)]
    )
    assert upward == []


def test_measure_and_zoo_are_independent_and_report_reads_tables_only():
    graph = import_graph()
    bad = sorted(
        f"{m} -> {t}"
        for m, targets in graph.items()
        for t in targets
        if (group(m), group(t))
        in {
            ("measure", "zoo"),
            ("zoo", "measure"),
            ("report", "study"),
            ("report", "zoo"),
            ("report", "collect"),
        }
    )
    assert bad == []


def test_collect_has_no_import_cycle():
    graph = import_graph()
    inside = {
        m: {t for t in targets if group(t) == "collect"}
        for m, targets in graph.items()
        if group(m) == "collect"
    }
    assert "zoolens.collect.runner" in inside  # the graph was read
    assert find_cycle(inside) is None, find_cycle(inside)


def test_packages_form_no_cycle():
    packages: dict[str, set[str]] = defaultdict(set)
    for m, targets in import_graph().items():
        packages[group(m)].update(group(t) for t in targets if group(t) != group(m))
    assert find_cycle(packages) is None, find_cycle(packages)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
