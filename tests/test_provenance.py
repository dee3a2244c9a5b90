"""Provenance attributes of a results file (versions, git commit, command line, hosts, plugins)."""

from __future__ import annotations

import os
import socket
import subprocess
from importlib import metadata

import pytest

from asyncopt_mpi import provenance

from conftest import asyncopt_command, attrs, run_cli, run_mpi

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = ["--set", "problem.dim=5", "--set", "stop.iterations=10", "--set", "output.snapshot_every=0.05"]


def head_commit() -> str | None:
    try:
        done = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def check_provenance(found: dict, command_words: list[str]) -> None:
    for name in provenance.PROVENANCE_ATTRS:
        if not name.startswith("git_"):
            assert name in found, name
    assert found["numpy_version"] == metadata.version("numpy")
    assert found["scipy_version"] == metadata.version("scipy")
    assert found["h5py_version"] == metadata.version("h5py")
    assert found["python_version"].split()[0].count(".") == 2
    assert all(word in found["command_line"] for word in command_words)
    assert socket.gethostname() in list(found["hosts"])
    assert found["plugins"] == "none"
    commit = head_commit()
    if commit is not None:  # running from a checkout (the package is imported from it)
        # HEAD itself may have moved on since the run (commits made meanwhile): the recorded commit is an ancestor.
        ancestor = subprocess.run(["git", "-C", ROOT, "merge-base", "--is-ancestor", found["git_commit"], commit],
                                  capture_output=True, timeout=30)
        assert ancestor.returncode == 0, (found["git_commit"], commit)
        assert len(found["git_commit"]) == 40 and "git_dirty" in found


def test_a_sim_run_records_versions_commit_and_command_line(tmp_path):
    path = tmp_path / "sim.h5"
    done = run_cli(["run", "--backend", "sim", "--set", "workers.n=2", "--output", str(path)] + RUN)
    assert done.returncode == 0, done.stderr
    check_provenance(attrs(path), ["run", "--backend", "sim", "workers.n=2", str(path)])


@pytest.mark.mpi
def test_an_mpi_run_records_mpi4py_and_the_mpi_library(tmp_path):
    path = tmp_path / "mpi.h5"
    done = run_mpi(3, ["run", "--output", str(path), "--set", "workers.compute_scale=0.002"] + RUN, timeout=120)
    assert done.returncode == 0, done.stderr
    found = attrs(path)
    check_provenance(found, ["run", str(path)])
    assert found["mpi4py_version"] == metadata.version("mpi4py")
    assert found["mpi_library"] not in ("", "none")
    shown = run_cli(["summary", "--provenance", str(path)])
    assert shown.returncode == 0, shown.stderr
    for name in provenance.SHOWN_ATTRS:
        assert f"  {name}: " in shown.stdout
    assert f"mpi4py_version: {metadata.version('mpi4py')}" in shown.stdout


def test_outside_a_checkout_there_is_no_commit(tmp_path, monkeypatch):
    monkeypatch.setattr(provenance, "__file__", str(tmp_path / "asyncopt_mpi" / "provenance.py"))
    assert provenance.git_state() == {}


def test_slurm_ids_hdf5_version_and_plugin_file_digests_are_recorded(tmp_path):
    import hashlib

    import h5py

    plugin = tmp_path / "plug.py"
    plugin.write_text("import asyncopt_mpi  # a plugin that registers nothing\n")
    path = tmp_path / "sim.h5"
    env = {**os.environ, "SLURM_JOB_ID": "4242", "SLURM_ARRAY_JOB_ID": "4240", "SLURM_ARRAY_TASK_ID": "2"}
    done = subprocess.run(asyncopt_command() + ["run", "--backend", "sim", "--plugin", str(plugin), "--set",
                                                "workers.n=2", "--output", str(path)] + RUN,
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    found = attrs(path)
    assert found["slurm"] == "SLURM_JOB_ID=4242, SLURM_ARRAY_JOB_ID=4240, SLURM_ARRAY_TASK_ID=2"
    assert found["hdf5_version"] == h5py.version.hdf5_version
    assert found["plugin_sha256"] == f"{plugin} sha256={hashlib.sha256(plugin.read_bytes()).hexdigest()}"


def test_git_and_versions_are_looked_up_once_per_process(monkeypatch):
    """A sweep's runs in one process share what cannot change: no git subprocess per run."""
    calls = []
    real = subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: calls.append(args) or real(*args, **kwargs))
    provenance._per_process.cache_clear()
    first = provenance.collect()
    count = len(calls)
    assert provenance.collect().get("git_commit") == first.get("git_commit")
    assert len(calls) == count  # the second run started no process
