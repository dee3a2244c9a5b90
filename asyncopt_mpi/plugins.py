"""Plugins: user modules and files that add methods and problems, imported by every process of a run.

A plugin is a module name (`mypkg.methods`) or a Python file (`path/to/file.py`) whose import
registers methods and problems with `register_method` / `register_problem`. Plugins come
from `--plugin`, from a `[plugins] plugins = [...]` table of the config, and from installed
packages through the entry-point groups `asyncopt_mpi.methods` and `asyncopt_mpi.problems`.
A run records its plugins in the results file (attribute `plugin_specs` and the stored config's
`[plugins]` table), so `--resume`, `evaluate` and sweeps import them again on their own.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from contextlib import contextmanager
from typing import Iterable, Iterator

from .errors import UserError
from .inputs import clip, shown
from .registry import BUILT_IN, current_origin, registering_as, same_definition

ENTRY_POINT_GROUPS = ("asyncopt_mpi.methods", "asyncopt_mpi.problems")

_loaded: dict[str, str] = {}  # resolved spec -> module name, in import order
_requested: list[str] = []  # resolved specs given by --plugin
_entry_points_loaded = False


class PluginError(UserError):
    """A plugin that cannot be found or fails to import (exit 2)."""


def is_file_spec(spec: str) -> bool:
    """A spec naming a file (ends in .py or contains a path separator) rather than a module."""
    return spec.endswith(".py") or os.sep in spec or "/" in spec


def resolve(spec: str) -> str:
    """The spec as it is stored: files as absolute paths (so another directory finds them), modules as given."""
    spec = spec.strip()
    return os.path.abspath(os.path.expanduser(spec)) if is_file_spec(spec) else spec


def load_plugin(spec: str) -> str:
    """Import one plugin (once per process); returns its resolved spec. Raises PluginError."""
    resolved = resolve(spec)
    if resolved in _loaded:
        return resolved
    if not resolved:
        raise PluginError("plugin: an empty name; give a module (mypkg.methods) or a file (path/to/file.py)")
    with registering_as(f"plugin {spec.strip()}"):
        try:
            with _exits_refused():
                module_name = _import_file(resolved) if is_file_spec(resolved) else _import_module(resolved)
        except PluginError:
            raise
        except (Exception, SystemExit, _ExitAtImport) as exc:  # the plugin's own code failed: one line
            raise _import_failure(spec.strip(), exc) from exc
    _loaded[resolved] = module_name
    return resolved


def _import_failure(label: str, exc: BaseException) -> PluginError:
    """The one line (exit 2) for a plugin whose import raised, or tried to end the process: a broken
    input, not a request of the user."""
    if isinstance(exc, (SystemExit, _ExitAtImport)):
        call = f"{'sys.exit' if isinstance(exc, SystemExit) else 'os._exit'}({_exit_argument(exc.code)})"
        return PluginError(f"plugin {shown(label)} exits the process at import ({call}); a plugin "
                           "only defines and registers methods and problems")
    return PluginError(f"plugin {shown(label)} failed to import: {type(exc).__name__}: {clip(_one_line(exc))}")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else "(no message)"


class _ExitAtImport(BaseException):
    """os._exit called while a plugin is imported, raised instead of ending the process without a word."""

    def __init__(self, code: object) -> None:
        super().__init__(code)
        self.code = code


@contextmanager
def _exits_refused() -> Iterator[None]:
    """While a plugin imports, os._exit raises _ExitAtImport: the real one cannot be caught, and a
    plugin that ends the process there would leave a silent status 0 and no results file. The
    project's own calls (a second Ctrl-C) still end the process."""
    real_exit = os._exit

    def exit_at_import(code: int) -> None:
        if sys._getframe(1).f_globals.get("__name__", "").startswith(f"{__package__}."):
            real_exit(code)
        raise _ExitAtImport(code)

    os._exit = exit_at_import
    try:
        yield
    finally:
        os._exit = real_exit


def _exit_argument(code: object) -> str:
    """What a plugin gave sys.exit or os._exit, bounded for an error line ("" for none)."""
    return "" if code is None else str(code) if isinstance(code, int) else shown(str(code))


def _import_module(name: str) -> str:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise PluginError(
                f"plugin {name!r}: no module named {exc.name!r}; give an importable module "
                f"(on PYTHONPATH or installed) or a file path ending in .py"
            ) from None
        raise
    return name


def _import_file(path: str) -> str:
    if not os.path.isfile(path):
        raise PluginError(f"plugin {path!r}: file not found")
    stem = os.path.splitext(os.path.basename(path))[0]
    digest = hashlib.sha1(path.encode()).hexdigest()[:8]
    module_name = f"asyncopt_plugin_{stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"plugin {path!r}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # pickling and multiprocessing find the plugin's classes
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module_name


def load_entry_points() -> list[str]:
    """Import the plugins installed packages declare (once per process); returns their names."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return []
    _entry_points_loaded = True
    if not _maybe_declared():
        return []
    import importlib.metadata  # here: importing it costs tens of milliseconds of CPU

    found = []
    for group in ENTRY_POINT_GROUPS:
        for entry in importlib.metadata.entry_points(group=group):
            label = f"entry point {entry.name} = {entry.value}"
            with registering_as(f"entry point {entry.name} ({entry.value})"):
                try:
                    with _exits_refused():
                        loaded = entry.load()
                    _register_loaded(group, entry.name, loaded)
                except UserError as exc:
                    raise PluginError(f"plugin {label!r}: {exc}") from exc
                except (Exception, SystemExit, _ExitAtImport) as exc:
                    raise _import_failure(label, exc) from exc
            found.append(entry.name)
    return found


_GROUP_HEADERS = {f"[{group}]".encode() for group in ENTRY_POINT_GROUPS}  # as entry_points.txt heads a group


def _maybe_declared() -> bool:
    """Whether an installed distribution may declare an entry point of ours: a look at the entry_points.txt
    files on sys.path, so that a process without such plugins never imports importlib.metadata. A layout
    this look does not read (a zip or .egg on sys.path) answers True, and importlib.metadata decides."""
    for entry in sys.path:
        folder = entry or os.curdir
        if folder.endswith(".egg") or os.path.isfile(folder):
            return True
        try:
            names = os.listdir(folder)
        except OSError:  # absent, or not a folder
            continue
        for name in names:
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            try:
                with open(os.path.join(folder, name, "entry_points.txt"), "rb") as handle:
                    if any(line.strip() in _GROUP_HEADERS for line in handle):
                        return True
            except OSError:  # no entry points, or an .egg-info file
                continue
    return False


def _register_loaded(group: str, name: str, loaded: object) -> None:
    """An entry point may name a module (its import registers) or a class/factory (registered here)."""
    import types

    if isinstance(loaded, types.ModuleType):
        return
    if group == "asyncopt_mpi.methods":
        from .methods import METHODS, register_method

        if METHODS.get(getattr(loaded, "name", None)) is not loaded:
            register_method(loaded)  # type: ignore[arg-type]
    else:
        from .problems import PROBLEMS, register_problem

        registered = PROBLEMS.get(getattr(loaded, "name", "") or name)
        if registered is not loaded and getattr(registered, "factory", None) is not loaded:
            register_problem(getattr(loaded, "name", "") or name, loaded)  # type: ignore[arg-type]


def load_plugins(specs: Iterable[str] = (), *, requested: bool = True) -> list[str]:
    """Import entry-point plugins and then `specs`; returns the resolved specs. Raises PluginError.

    requested=True (--plugin): every config this process builds
    afterwards lists them in its [plugins] table, so its results file records them.
    """
    load_entry_points()
    resolved = [load_plugin(spec) for spec in specs]
    if requested:
        _requested.extend(spec for spec in resolved if spec not in _requested)
    return resolved


def requested_plugins() -> list[str]:
    """The plugins this process was asked for by --plugin (resolved, in order)."""
    return list(_requested)


def loaded_plugins() -> list[str]:
    """Every plugin this process imported from --plugin, the API or a [plugins] table, in order."""
    return list(_loaded)


def implied_plugins(method: str, problem: str) -> list[str]:
    """What other processes must import for a method/problem registered by plain Python code (not a
    plugin): a package module by name, a top-level module by its file. Names defined in __main__
    (a script, a notebook) or unknown names give nothing."""
    from .methods import ORIGINS as METHOD_ORIGINS
    from .problems import ORIGINS as PROBLEM_ORIGINS

    found = []
    for origin in (METHOD_ORIGINS.get(method, ""), PROBLEM_ORIGINS.get(problem, "")):
        if not origin.startswith("module "):
            continue
        name = origin.split(" ", 1)[1]
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        if name == "__main__" or not path:  # a script, a notebook, exec'd code: nothing to import again
            continue
        found.append(name if "." in name else os.path.abspath(path))
    return found


def merge(*lists: Iterable[str]) -> list[str]:
    """Resolved specs of several lists, first occurrence kept."""
    out: list[str] = []
    for items in lists:
        for spec in items:
            resolved = resolve(spec)
            if resolved and resolved not in out:
                out.append(resolved)
    return out


def table_plugins(raw: dict, source: str = "config") -> list[str]:
    """The `plugins` list of a parsed config's [plugins] table (checked: a list of strings)."""
    table = raw.get("plugins", {})
    if not isinstance(table, dict):
        raise PluginError(f"{clip(source)}: plugins must be a table ([plugins] with plugins = [...]), not a value")
    items = table.get("plugins", [])
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise PluginError(
            f"{clip(source)}: plugins.plugins must be a list of module names or .py paths, got {shown(items)}"
        )
    return items


def override_plugins(overrides: Iterable[str]) -> list[str]:
    """Plugins named by a `--set plugins.plugins=[...]` override ([] if there is none or it is malformed)."""
    from .config import parse_value

    found: list[str] = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if sep and key.strip() == "plugins.plugins":
            parsed = parse_value(value.strip())
            parsed = [parsed] if isinstance(parsed, str) else parsed
            if isinstance(parsed, list) and all(isinstance(spec, str) for spec in parsed):
                found = parsed  # the last override wins, as in the config
    return found


def config_file_plugins(path: str | None) -> list[str]:
    """[plugins] of a TOML config file; [] when it cannot be read or is refused (loading the config reports that).

    Under MPI rank 0 calls this before the ranks agree on anything, so it must never raise.
    """
    from .config import parse_toml, read_config_file

    if path is None:
        return []
    try:
        return table_plugins(parse_toml(read_config_file(path).decode("utf-8", errors="replace"), path), path)
    except UserError:
        return []


def results_file_plugins(path: str | None) -> list[str]:
    """The plugins a results file's run used ([] when there are none or it cannot be read)."""
    if path is None or not os.path.exists(path):
        return []
    try:
        from .config import parse_stored_config
        from .results import open_results

        with open_results(path) as handle:
            stored = handle.attrs.get("plugin_specs")
            if stored is None:  # the stored config, read with its nesting bounded
                return table_plugins(parse_stored_config(handle.attrs.get("config", ""), path))
            return [item.decode() if isinstance(item, bytes) else str(item) for item in stored]
    except Exception:
        return []


__all__ = [
    "BUILT_IN", "ENTRY_POINT_GROUPS", "PluginError", "config_file_plugins", "current_origin", "implied_plugins",
    "load_entry_points", "load_plugin", "load_plugins", "loaded_plugins", "merge", "override_plugins",
    "requested_plugins", "resolve", "results_file_plugins", "same_definition", "table_plugins",
]
