"""Registry of methods by their public name (see `asyncopt methods`)."""

from __future__ import annotations

from ..errors import ConfigError
from ..inputs import shown
from .base import Job, JobKind, Method, Result, Server, StepAndRestart

METHODS: dict[str, type[Method]] = {}
ORIGINS: dict[str, str] = {}  # method name -> "built-in", "plugin SPEC", "entry point ..." or the defining module


def register_method(cls: type[Method]) -> type[Method]:
    """Make a method available under `cls.name` (usable as a class decorator); the public way for
    built-in and plugin methods alike. A name already taken by another method is a ConfigError."""
    from ..plugins import BUILT_IN, current_origin, same_definition

    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise ConfigError(f"register_method: {cls!r} is not a subclass of asyncopt_mpi.Method")
    name = cls.name
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError(
            f"register_method: {cls.__module__}.{cls.__qualname__}.name = {name!r}; "
            "set the class attribute name to an identifier such as 'my_sgd'"
        )
    existing = METHODS.get(name)
    if existing is not None and not same_definition(existing, cls):
        raise ConfigError(
            f"method name {name!r} of {cls.__module__}.{cls.__qualname__} is already taken by "
            f"{existing.__module__}.{existing.__qualname__} ({ORIGINS[name]}); give the method another name"
        )
    # A built-in module is built in even when a plugin's first `ao.register_method` loads it (lazy API).
    origin = BUILT_IN if cls.__module__.startswith(__name__ + ".") else current_origin()
    if origin == BUILT_IN and not cls.__module__.startswith(__name__ + "."):
        origin = f"module {cls.__module__}"  # registered by user code, not through a plugin
    METHODS[name] = cls
    ORIGINS[name] = origin
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


# Importing the modules registers their methods.
from . import (  # noqa: E402,F401
    accelerated_rennala_sgd,
    async_sgd,
    compressed,
    decentralized,
    decentralized_async_sgd,
    frank_wolfe,
    freya_sgd,
    gradient_tracking,
    hero_sgd,
    malenia_sgd,
    minibatch_sgd,
    page,
    relay_sgd,
    rennala_sgd,
    ringmaster_asgd,
    spider,
    synthesis,
)



def _defaults(cls: type[Method]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in cls.params.items()) or "-"


def is_built_in(name: str) -> bool:
    from ..plugins import BUILT_IN

    return ORIGINS.get(name) == BUILT_IN


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
    from ..plugins import BUILT_IN
    from ..problems import ORIGINS as PROBLEM_ORIGINS, PROBLEMS

    names = sorted(name for name in PROBLEMS if PROBLEM_ORIGINS.get(name) != BUILT_IN)
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
    "METHODS", "ORIGINS", "Job", "JobKind", "Method", "Result", "Server", "StepAndRestart", "is_built_in",
    "method_class", "method_lines", "method_table_markdown", "register", "register_method",
]
