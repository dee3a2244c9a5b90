"""Registries of methods and problems by name that import a built-in module only when one of its names is used.

The built-in names come from a name -> module table, so listing them (config checks, `asyncopt
methods`) imports nothing, and a run imports the one method and problem it names: start-up pays
for neither the other modules nor what they import (scipy). tests/test_startup.py checks each
table against the registrations the modules really make.

Every name records where it came from (built-in, a plugin, a module of user code): plugins.py
imports each plugin inside `registering_as`, and this module imports no plugin machinery, so
imports point one way (plugins -> methods/problems -> registry).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from .errors import ConfigError

BUILT_IN = "built-in"
_current_origin: list[str] = []  # the plugin being imported (names it registers are marked with it)


def current_origin() -> str:
    """What registered names come from right now: the plugin being imported, else built-in."""
    return _current_origin[-1] if _current_origin else BUILT_IN


@contextmanager
def registering_as(label: str) -> Iterator[None]:
    """Names registered inside come from `label` (plugins.py imports each plugin inside one)."""
    _current_origin.append(label)
    try:
        yield
    finally:
        _current_origin.pop()


def same_definition(a: object, b: object) -> bool:
    """Two registered classes (or factories) are one definition: the same object, or the same
    qualified name in the same module or the same source file (a file imported both as a module
    and as a plugin, or reloaded)."""
    import inspect

    if a is b:
        return True
    if getattr(a, "__qualname__", None) != getattr(b, "__qualname__", None):
        return False
    if getattr(a, "__module__", None) == getattr(b, "__module__", None):
        return True
    try:
        return os.path.realpath(inspect.getfile(a)) == os.path.realpath(inspect.getfile(b))  # type: ignore[arg-type]
    except (TypeError, OSError):
        return False


class Registry(MutableMapping):
    """name -> registered class (or problem factory); a built-in name imports its module on first use."""

    def __init__(self, kind: str, package: str, modules: dict[str, str], load: Callable[[str, str], None]):
        self.kind = kind  # "method" or "problem", for messages
        self.package = package  # where built-in definitions live
        self.modules = dict(modules)  # built-in name -> its module (full name)
        self.origins: dict[str, str] = dict.fromkeys(modules, BUILT_IN)  # name -> where it came from
        self._load = load  # (name, module): import the module so that name is registered
        self._entries: dict[str, Any] = {}
        self._pending = dict.fromkeys(modules)  # built-in names not loaded yet (a dict keeps the table's order)

    def __getitem__(self, name: str) -> Any:
        if name in self._pending:
            self._load(name, self.modules[name])
            if name in self._pending:
                raise RuntimeError(f"{self.modules[name]} did not register the {self.kind} {name!r} "
                                   f"(the {self.kind} table in {self.package} is out of date)")
        return self._entries[name]

    def __setitem__(self, name: str, entry: Any) -> None:
        self._entries[name] = entry
        self._pending.pop(name, None)

    def __delitem__(self, name: str) -> None:
        if name in self._pending:
            del self._pending[name]
        else:
            del self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._pending

    def __iter__(self) -> Iterator[str]:
        return iter([*self._entries, *self._pending])

    def __len__(self) -> int:
        return len(self._entries) + len(self._pending)

    def loaded(self) -> dict[str, Any]:
        """The names registered so far (built-ins only once their module was imported)."""
        return dict(self._entries)

    def add(self, name: str, entry: Any, definition: Any) -> None:
        """Register `entry` under `name`: the public way for built-ins and plugins alike. `definition` is
        what the user registered (a class or a factory). A name another definition has is a ConfigError."""
        module = entry.__module__
        built_in_module = self.modules.get(name)
        if name in self._pending and module != built_in_module:
            self[name]  # a built-in name is taken even before its module is imported
        existing = self._entries.get(name)
        if existing is not None and not same_definition(getattr(existing, "factory", existing), definition):
            raise ConfigError(
                f"{self.kind} name {name!r} of {module}.{entry.__qualname__} is already taken by "
                f"{existing.__module__}.{existing.__qualname__} ({self.origins[name]}); give the {self.kind} another name"
            )
        # A built-in module is built in even when a plugin's first registration loads it (lazy API).
        ours = module.startswith(self.package + ".")
        origin = BUILT_IN if ours else current_origin()
        if origin == BUILT_IN and not ours:
            origin = f"module {module}"  # registered by user code, not through a plugin
        self[name] = entry
        self.origins[name] = origin

    def is_built_in(self, name: str) -> bool:
        return self.origins.get(name) == BUILT_IN
