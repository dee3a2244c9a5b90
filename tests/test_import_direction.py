"""Imports point one way: config.py (data and parsing) imports no registry, graph.py no config, and no
import cycle passes through config.py, plugins, the registries or graph.py. The package is read with `ast`
(nothing is imported), and every import counts, also those inside functions; only `if TYPE_CHECKING:`
blocks, which never run, do not."""

from __future__ import annotations

import ast
import os

import pytest

PACKAGE = "asyncopt_mpi"
ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), PACKAGE)


def package_modules() -> dict[str, str]:
    """Every module of the package by dotted name (a package by its own name) -> its file."""
    modules = {}
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                parts = os.path.relpath(path, os.path.dirname(ROOT))[:-3].split(os.sep)
                modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return getattr(test, "id", None) == "TYPE_CHECKING" or getattr(test, "attr", None) == "TYPE_CHECKING"


def imported_names(module: str, path: str) -> set[str]:
    """The dotted names the module's import statements name, relative ones resolved (`from .x import y`
    gives `pkg.x.y`, which is a module when y is a submodule and else names an attribute of pkg.x)."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    here = module.split(".") if path.endswith("__init__.py") else module.split(".")[:-1]
    names: set[str] = set()
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                pending.append(ast.Module(body=child.orelse, type_ignores=[]))
                continue
            if isinstance(child, ast.Import):
                names.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = here[: len(here) - child.level + 1] if child.level else []
                origin = ".".join(base + ([child.module] if child.module else []))
                names.update(f"{origin}.{alias.name}" for alias in child.names)
            pending.append(child)
    return names


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (a name resolves to its longest prefix that is a module)."""
    modules = package_modules()
    graph = {}
    for module, path in modules.items():
        targets = set()
        for name in imported_names(module, path):
            while name not in modules and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in modules and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components of more than one module (the import cycles), without recursion."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for start in sorted(graph):
        if start in index:
            continue
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        walk = [(start, iter(sorted(graph[start])))]
        while walk:
            node, targets = walk[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    walk.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                walk.pop()
                if walk:
                    low[walk[-1][0]] = min(low[walk[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(component)
    return components


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_config_imports_no_registry_runtime_or_what_they_build(graph):
    refused = ("methods", "problems", "plugins", "registry", "graph", "timing", "memory", "datasets", "runtime",
               "validate")
    imported = sorted(graph[f"{PACKAGE}.config"])
    assert [name for name in imported if name.split(".")[1] in refused] == [], imported


def test_graph_does_not_import_config(graph):
    assert f"{PACKAGE}.config" not in graph[f"{PACKAGE}.graph"]


def test_no_import_cycle_passes_through_config_the_registries_or_graph(graph):
    """config, plugins, the registries (registry, methods, problems) and graph/pivots each import only below them."""
    layered = {f"{PACKAGE}.{name}" for name in ("config", "plugins", "registry", "methods", "problems", "graph", "pivots")}
    assert [sorted(cycle) for cycle in strongly_connected(graph) if cycle & layered] == []
    # The scan is what the answer rests on: it sees imports inside functions (validate.py asks the registries
    # only there) and skips `if TYPE_CHECKING:` (the package's __init__ names api there; it loads it lazily).
    assert f"{PACKAGE}.methods" in graph[f"{PACKAGE}.validate"]
    assert f"{PACKAGE}.api" not in graph[PACKAGE]
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
