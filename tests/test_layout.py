"""The package's layout keeps its architecture: the runtime's three subpackages and which way imports run.

Read from the source with `ast` (nothing is imported, so no import side effect can hide an edge):
the simulator (runtime/sim), the MPI runtime (runtime/mpi) and the decentralized runtime
(runtime/graph) are subpackages beside the shared Server contract; only runtime/mpi imports mpi4py
at module level, and neither the simulator nor the graph runtime imports runtime/mpi; methods
never import the runtime or mpi4py, so they run unchanged on both runtimes.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "asyncopt_mpi"
RUNTIME = PACKAGE / "runtime"
SUBPACKAGES = ("sim", "mpi", "graph")


def module_name(path: Path) -> list[str]:
    """asyncopt_mpi/runtime/sim/runs.py -> ["asyncopt_mpi", "runtime", "sim", "runs"] (a package: its __init__'s)."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def imported(path: Path, module_level_only: bool) -> set[str]:
    """The absolute names of the modules `path` imports, at module level or anywhere."""
    return imports_in(path.read_text(), module_name(path), path.name == "__init__.py", module_level_only)


def imports_in(source: str, name: list[str], is_package: bool, module_level_only: bool) -> set[str]:
    """The absolute names of the modules `source` (module `name`) imports, relative imports resolved.

    Module level includes class bodies and `if`/`try` blocks (they run on import), not function bodies."""
    package = name if is_package else name[:-1]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if module_level_only and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = package[:len(package) - child.level + 1] if child.level else []
                target = base + (child.module.split(".") if child.module else [])
                found.add(".".join(target))
                found.update(".".join(target + [alias.name]) for alias in child.names)
            visit(child)

    visit(ast.parse(source))
    return found


def modules_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def imports_any(names: set[str], prefix: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for name in names)


def test_the_runtime_has_its_three_subpackages_beside_the_shared_contract():
    for name in SUBPACKAGES:
        init = RUNTIME / name / "__init__.py"
        assert init.is_file(), f"runtime/{name}/ is not a package"
        docstring = ast.get_docstring(ast.parse(init.read_text()))
        assert docstring and docstring.splitlines()[0].strip(), f"runtime/{name}/__init__.py says what it is for"
        assert len(modules_under(RUNTIME / name)) > 1, f"runtime/{name}/ holds its modules"
    for shared in ("server.py", "session.py", "worker.py", "points.py", "build.py", "signals.py", "guardian.py"):
        assert (RUNTIME / shared).is_file(), f"runtime/{shared} (shared by both runtimes) stays at runtime/"
    flat = sorted(path.name for path in RUNTIME.glob("*.py")
                  if path.stem.startswith(("sim", "mpi", "graph_")) or path.stem in ("protocol", "job_groups"))
    assert flat == [], "modules of a subpackage left at runtime/"


def test_only_the_mpi_runtime_imports_mpi4py_and_the_simulators_never_import_it():
    importing = [path.relative_to(PACKAGE).as_posix() for path in modules_under(PACKAGE)
                 if imports_any(imported(path, module_level_only=True), "mpi4py")]
    assert importing and all(path.startswith("runtime/mpi/") for path in importing), importing
    assert "runtime/mpi/__init__.py" not in importing  # the shared session imports runtime.mpi.backoff on every run
    for name in ("sim", "graph"):
        for path in modules_under(RUNTIME / name):
            names = imported(path, module_level_only=False)
            assert not imports_any(names, "mpi4py"), path
            assert not imports_any(names, "asyncopt_mpi.runtime.mpi"), f"{path} imports the MPI runtime"


def test_methods_never_import_the_runtime_nor_mpi4py():
    paths = modules_under(PACKAGE / "methods")
    assert len(paths) > 10
    for path in paths:
        names = imported(path, module_level_only=False)
        assert not imports_any(names, "mpi4py"), path
        assert not imports_any(names, "asyncopt_mpi.runtime"), path


def test_relative_imports_are_resolved_to_the_modules_they_name():
    """The checks above see `from ..mpi import loops` in runtime/graph/x.py as asyncopt_mpi.runtime.mpi.loops."""
    source = ("from ..mpi import loops\nfrom . import core\nimport mpi4py.MPI\n"
              "def later():\n    from ...methods import base\n")
    name = ["asyncopt_mpi", "runtime", "graph", "probe"]
    anywhere = imports_in(source, name, is_package=False, module_level_only=False)
    assert {"asyncopt_mpi.runtime.mpi.loops", "asyncopt_mpi.runtime.graph.core", "mpi4py.MPI",
            "asyncopt_mpi.methods.base"} <= anywhere
    on_import = imports_in(source, name, is_package=False, module_level_only=True)
    assert "asyncopt_mpi.methods.base" not in on_import and "mpi4py.MPI" in on_import
    assert "asyncopt_mpi.runtime.graph.core" in imports_in("from . import core\n", name[:3], True, True)
