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
    "atomic": 0,
    "measure": 1,
    "zoo": 1,
    "collect": 2,
    "study": 2,
    "report": 3,
    "demo": 3,
    "deploy": 3,
    "cli": 3,
}


def _module_name(path: Path, src: Path) -> str:
    parts = path.relative_to(src.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    """module -> the modules of the package ``src`` it imports, at module top or inside a
    function (``from pkg import module`` names the module)."""
    top = src.name

    def _is_module(name: str) -> bool:
        path = src.parent / Path(*name.split("."))
        return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()

    graph: dict[str, set[str]] = defaultdict(set)
    for path in sorted(src.rglob("*.py")):
        module = _module_name(path, src)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                graph[module].update(a.name for a in node.names if a.name.split(".")[0] == top)
            elif isinstance(node, ast.ImportFrom):
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = (
                    (base + "." + node.module if node.module else base)
                    if node.level
                    else (node.module or "")
                )
                if name.split(".")[0] != top:
                    continue
                modules = {f"{name}.{a.name}" for a in node.names if _is_module(f"{name}.{a.name}")}
                graph[module].update(modules)
                if len(modules) < len(node.names):
                    # A name from the package itself (``from zoolens.report import
                    # build_report``): an edge to the package. ``from pkg import module``
                    # reaches the package only as every submodule import does.
                    graph[module].add(name)
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


def test_modules_form_no_cycle():
    """No module reaches itself through imports, lazy ones inside functions included (a
    cycle closed by a function-level import is a loop all the same)."""
    graph = import_graph()
    assert "zoolens.study.stream" in graph  # the graph was read
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_a_cycle_closed_inside_a_function_is_found(tmp_path):
    """The module graph sees an import inside a function and ``from pkg import module``;
    a package's ``__init__`` is not an edge of its submodules."""
    pkg = tmp_path / "loopy"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("def __getattr__(name):\n    from loopy import a\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from loopy.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from .. import c\n")
    (pkg / "c.py").write_text("import os\n\ndef g():\n    from loopy import a\n    return a\n")
    graph = import_graph(pkg)
    assert graph["loopy.a"] == {"loopy.sub.b"}
    assert graph["loopy.sub.b"] == {"loopy.c"}
    assert find_cycle(graph) == ["loopy.a", "loopy.sub.b", "loopy.c", "loopy.a"]
    (pkg / "c.py").write_text("import os\n")
    assert find_cycle(import_graph(pkg)) is None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
