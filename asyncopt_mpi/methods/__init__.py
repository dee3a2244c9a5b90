"""Registry of methods by their public name (see `asyncopt methods`)."""

from __future__ import annotations

import importlib

from ..errors import ConfigError
from ..inputs import shown
from ..registry import Registry
from .base import Job, JobKind, Method, Result, Server, StepAndRestart

# Built-in method name -> the module (in this package) whose import registers it. A module is imported
# when one of its names is first used, so a run imports only the method it runs.
BUILT_IN_MODULES = {
    "accelerated_rennala_sgd": "accelerated_rennala_sgd",
    "amelie_sgd": "decentralized",
    "async_sgd": "async_sgd",
    "decentralized_async_sgd": "decentralized_async_sgd",
    "fragile_sgd": "decentralized",
    "freya_page": "page",
    "freya_sgd": "freya_sgd",
    "gradient_tracking": "gradient_tracking",
    "hero_gd": "page",
    "hero_page": "page",
    "hero_sgd": "hero_sgd",
    "malenia_sgd": "malenia_sgd",
    "minibatch_page": "page",
    "minibatch_sgd": "minibatch_sgd",
    "qsgd": "compressed",
    "relay_sgd": "relay_sgd",
    "rennala_sgd": "rennala_sgd",
    "ringmaster_asgd": "ringmaster_asgd",
    "sfw_asyn": "frank_wolfe",
    "sfw_dist": "frank_wolfe",
    "shadowheart_sgd": "compressed",
    "soviet_gd": "page",
    "soviet_page": "page",
    "spider": "spider",
    "svrf_asyn": "frank_wolfe",
    "synthesis": "synthesis",
}


def _import_module(name: str, module: str) -> None:
    importlib.import_module(module)  # its decorators register its methods


METHODS = Registry("method", __name__, {name: f"{__name__}.{module}" for name, module in BUILT_IN_MODULES.items()},
                   _import_module)
ORIGINS = METHODS.origins  # method name -> "built-in", "plugin SPEC", "entry point ..." or the defining module


def register_method(cls: type[Method]) -> type[Method]:
    """Make a method available under `cls.name` (usable as a class decorator); the public way for
    built-in and plugin methods alike. A name already taken by another method is a ConfigError."""
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise ConfigError(f"register_method: {cls!r} is not a subclass of asyncopt_mpi.Method")
    name = cls.name
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError(
            f"register_method: {cls.__module__}.{cls.__qualname__}.name = {name!r}; "
            "set the class attribute name to an identifier such as 'my_sgd'"
        )
    METHODS.add(name, cls, cls)
    return cls


register = register_method  # the name the built-in modules have always used


def method_class(name: str) -> type[Method]:
    """The method class registered under `name` (built-in or from a plugin), e.g. to subclass into a variant.

    A name nobody registered is a ConfigError that lists the registered ones.
    """
    if name not in METHODS:
        registered = ", ".join(sorted(METHODS))
        raise ConfigError(f"method_class: no method is registered as {shown(name)}; registered: {registered}")
    return METHODS[name]


def _defaults(cls: type[Method]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in cls.params.items()) or "-"


def is_built_in(name: str) -> bool:
    return METHODS.is_built_in(name)


def method_lines() -> list[str]:
    """`asyncopt methods`: every method, what it does, its own parameters with defaults, its source.

    Built-in methods first; methods from plugins follow, each marked with where it came from.
    """
    lines = []
    ordered = sorted(METHODS, key=lambda name: (not is_built_in(name), name))
    for name in ordered:
        cls = METHODS[name]
        mark = "" if is_built_in(name) else f"[{ORIGINS[name]}] "
        lines.append(f"{name:<26} {mark}{cls.description}")
        lines.append(f"{'':<26} parameters: lr, batch{', ' + _defaults(cls) if cls.params else ''}; source: {cls.paper}")
    return lines + _plugin_problem_lines()


def _plugin_problem_lines() -> list[str]:
    """Problems that plugins added (problem.name values beyond the built-in ones), marked like methods."""
    from ..problems import ORIGINS as PROBLEM_ORIGINS, PROBLEMS

    names = sorted(name for name in PROBLEMS if not PROBLEMS.is_built_in(name))
    lines = ["", "problems from plugins (problem.name):"] if names else []
    for name in names:
        entry = PROBLEMS[name]
        own = ", ".join(f"{key}={value!r}" for key, value in entry.params.items()) or "-"
        lines.append(f"{name:<26} [{PROBLEM_ORIGINS[name]}] {entry.description}")
        lines.append(f"{'':<26} parameters: {own}")
    return lines


def method_table_markdown() -> str:
    """The built-in methods as a Markdown table (README's method table is this text)."""
    rows = ["| method | what it does | own parameters (defaults) | source |", "|---|---|---|---|"]
    for name in sorted(name for name in METHODS if is_built_in(name)):
        cls = METHODS[name]
        rows.append(f"| `{name}` | {cls.description} | {_defaults(cls)} | {cls.paper} |")
    return "\n".join(rows)


__all__ = [
    "BUILT_IN_MODULES", "METHODS", "ORIGINS", "Job", "JobKind", "Method", "Result", "Server", "StepAndRestart", "is_built_in",
    "method_class", "method_lines", "method_table_markdown", "register", "register_method",
]
