"""Provenance of a run: library versions, git commit, command line, plugins (with their files' sha256)
and the Slurm job it ran in, stored in the results file.

Collected by the process that writes the file (rank 0 under MPI, the simulator's process) and
stored as root attributes next to `asyncopt_version`, `mpi_library` and `hosts`, so a figure can
be traced back to the code and environment that made it (`asyncopt summary --provenance`). What
cannot change within a process (library versions, the checkout's commit) is found once per
process: a sweep's runs pay for git and the version lookups once, not per run.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shlex
import subprocess
import sys
from typing import Any

LIBRARIES = ("numpy", "scipy", "h5py", "mpi4py")
# The Slurm job, array task and step a run belongs to (absent outside Slurm).
SLURM_VARIABLES = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_STEP_ID")
# Root attributes this module writes, in the order `summary --provenance` shows them (with the
# run's own asyncopt_version, mpi_library and hosts).
PROVENANCE_ATTRS = (
    "python_version", *(f"{name}_version" for name in LIBRARIES), "hdf5_version", "git_commit", "git_dirty",
    "command_line", "plugins", "plugin_sha256", "slurm",
)
SHOWN_ATTRS = ("asyncopt_version", "mpi_library", "hosts", *PROVENANCE_ATTRS, "plugin_specs")  # specs: plugins.py
GIT_TIMEOUT = 2.0  # seconds; a slow or hung git must not delay a run


def collect() -> dict[str, Any]:
    """The provenance attributes of this process (git_* only when the package runs from a checkout)."""
    found = dict(_per_process())
    found["command_line"] = shlex.join(sys.argv)
    found["plugins"] = ", ".join(plugin_names()) or "none"
    found["plugin_sha256"] = ", ".join(plugin_digests()) or "none"
    found["slurm"] = ", ".join(f"{name}={os.environ[name]}" for name in SLURM_VARIABLES if name in os.environ) or "none"
    import logging

    logging.getLogger("asyncopt").debug(
        "provenance: Python %s, numpy %s, scipy %s, h5py %s, mpi4py %s, git commit %s",
        platform.python_version(), *(found[f"{name}_version"] for name in LIBRARIES),
        found.get("git_commit", "absent (not a checkout)"))
    return found


@functools.lru_cache(maxsize=1)
def _per_process() -> dict[str, Any]:
    """What stays the same for every run of this process: Python, library and HDF5 versions, git state."""
    import h5py

    found: dict[str, Any] = {"python_version": f"{platform.python_version()} ({sys.executable})"}
    for name in LIBRARIES:
        module = sys.modules.get(name)  # an imported module knows its version: no metadata lookup
        version = getattr(module, "__version__", None) or installed_version(name)
        found[f"{name}_version"] = str(version)
    found["hdf5_version"] = h5py.version.hdf5_version
    found.update(git_state())
    return found


def installed_version(name: str) -> str:
    """The installed version of a library this process did not import: the Version line of the first
    `NAME-VERSION.dist-info/METADATA` on sys.path (where importlib.metadata looks first), else what
    importlib.metadata finds; it is imported only then, as importing it costs tens of milliseconds."""
    for folder in sys.path:
        try:
            entries = os.listdir(folder or os.curdir)
        except OSError:  # absent, or a zip
            continue
        for entry in entries:
            if entry.endswith(".dist-info") and entry[: -len(".dist-info")].rsplit("-", 1)[0].lower() == name:
                try:
                    with open(os.path.join(folder or os.curdir, entry, "METADATA"), encoding="utf-8") as handle:
                        for line in handle:
                            if line.startswith("Version:"):
                                return line.split(":", 1)[1].strip()
                            if not line.strip():  # the end of the headers
                                break
                except OSError:
                    continue
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def plugin_digests() -> list[str]:
    """"FILE sha256=..." of each plugin file this process imported (what a module plugin ran is its version)."""
    from .plugins import is_file_spec, loaded_plugins

    digests = []
    for spec in loaded_plugins():
        if not is_file_spec(spec):
            continue
        try:
            with open(spec, "rb") as handle:
                digests.append(f"{spec} sha256={hashlib.sha256(handle.read()).hexdigest()}")
        except OSError as exc:
            digests.append(f"{spec} unreadable ({exc.strerror})")
    return digests


def git_state() -> dict[str, Any]:
    """{git_commit, git_dirty} of the checkout the package was imported from, or {} outside one.

    One git process: `status --branch` names the commit and lists the changes. An installed copy has no
    .git beside the package (none is started); one inside some other repository (a venv in a checkout)
    is not a checkout of this code either.
    """
    source = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.exists(os.path.join(source, ".git")):
        return {}
    try:
        done = subprocess.run(["git", "-C", source, "status", "--porcelain=v2", "--branch", "--untracked-files=no",
                               "--", "asyncopt_mpi"], capture_output=True, text=True, timeout=GIT_TIMEOUT,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return {}
    lines = done.stdout.splitlines() if done.returncode == 0 else []
    commit = next((line.split()[2] for line in lines if line.startswith("# branch.oid ")), "")
    if len(commit) != 40:  # no commit yet ("(initial)"), or git failed
        return {}
    return {"git_commit": commit, "git_dirty": any(not line.startswith("#") for line in lines)}


def plugin_names() -> list[str]:
    """Methods and problems registered from outside this package ("method:name (module)")."""
    from .methods import METHODS
    from .problems import PROBLEMS

    names = []
    for kind, registry in (("method", METHODS), ("problem", PROBLEMS)):
        for name in sorted(name for name in registry if not registry.is_built_in(name)):  # built-ins stay unimported
            module = getattr(registry[name], "__module__", "")
            if not module.startswith("asyncopt_mpi."):
                names.append(f"{kind}:{name} ({module})")
    return names


def describe(path: str) -> str:
    """`asyncopt summary --provenance`: one `key: value` line per provenance attribute of a file."""
    from .errors import UserError
    from .results import open_results

    try:
        with open_results(path) as handle:
            stored = dict(handle.attrs)
    except OSError as exc:
        raise UserError(f"{path}: not a readable results file ({exc})") from None
    lines = [path]
    for key in SHOWN_ATTRS:
        if key not in stored:
            value = "absent (not run from a git checkout)" if key.startswith("git_") else "absent (older file)"
        else:
            value = stored[key]
            if isinstance(value, bytes):
                value = value.decode()
            elif hasattr(value, "tolist"):
                value = value.tolist()
            if isinstance(value, list):
                value = ", ".join(item.decode() if isinstance(item, bytes) else str(item) for item in value)
        lines.append(f"  {key}: {value}")
    return "\n".join(lines)
