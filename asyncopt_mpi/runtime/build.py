"""Builds the parts of a run from a validated config (shared by both runtimes)."""

from __future__ import annotations

import math
import os
import socket
from typing import Any

import h5py
import numpy as np

from .. import __version__
from ..config import Config
from ..graph import Graph
from ..methods import METHODS, Method
from ..methods.decentralized import Plan, make_plan, uses_graph
from ..objective import DESCRIPTIONS, attach_objective, objective_name, reported
from ..problems import make_problem
from ..problems.base import Problem
from ..problems.splits import shard_indices
from ..results import ResultsWriter, ResumePoint, use_locking
from ..timing import TimingModel
from .. import provenance
from .mpi.text import printable
from .worker import WorkerContext


def build_problem(config: Config) -> Problem:
    return make_problem(config.problem)


def build_shards(config: Config, problem: Problem, n_workers: int) -> list[np.ndarray | None]:
    """Each worker's sample indices under workers.data_split (the same on every rank).

    Also attaches the objective the run reports (asyncopt_mpi.objective): (1/n) sum_i f_i for a
    heterogeneous-data method on real shards, else the problem's own mean.
    """
    workers = config.workers
    shards = shard_indices(
        problem.n_samples, n_workers, workers.data_split, labels=problem.labels(),
        alpha=workers.dirichlet_alpha, seed=workers.seed,
    )
    attach_objective(config.method.name, problem, shards)
    return shards


def build_context(config: Config, problem: Problem, worker: int, shard: np.ndarray | None) -> WorkerContext:
    return WorkerContext(worker, problem, config.workers.seed, shard=shard, segment=config.segment,
                         check_finite=config.backend == "mpi")


def build_method(config: Config, problem: Problem, n_workers: int) -> Method:
    return METHODS[config.method.name](config.method, problem, n_workers)


def build_plan(config: Config, n_workers: int, timing: TimingModel) -> Plan | None:
    """Graph, pivot and tree of a decentralized run (None for a parameter-server run)."""
    method = config.method
    if not uses_graph(method.name, config.graph.topology):
        return None
    graph = Graph.from_config(config.graph, n_workers)
    return make_plan(graph, method.name, method.params, method.batch, timing.expected_compute())


def compute_f_star(problem: Problem) -> float:
    value = reported(problem).compute_f_star()
    return float(value) if value is not None else math.nan


def open_writer(
    config: Config, problem: Problem, method: Method, n_workers: int, f_star: float,
    mpi_library: str = "none", hosts: list[str] | None = None, pids: list[int] | None = None,
    resume: ResumePoint | None = None, background: bool = False, graph: dict[str, Any] | None = None,
    staging: str | None = None,
) -> ResultsWriter:
    attrs: dict[str, Any] = {
        "method": config.method.name,
        "problem": config.problem.name,
        "backend": config.backend,
        "n_workers": n_workers,
        "config": config.to_toml(),
        "asyncopt_version": __version__,
        "mpi_library": printable(mpi_library),
        "hosts": np.array(sorted({printable(host) for host in hosts or [socket.gethostname()]}), dtype=object),
        "pids": np.array(pids or [os.getpid()], dtype=np.int64),  # per rank, to match launcher messages
        **provenance.collect(),  # library versions, git commit, command line, plugins
        # What every process of a resumed run, an evaluation or a sweep imports again (asyncopt_mpi.plugins).
        "plugin_specs": np.array(config.plugins.plugins, dtype=h5py.string_dtype()),
    }
    problem_attrs = {
        "f_star": f_star,
        "dim": problem.dim,
        "n_samples": problem.n_samples or 0,
        "name": config.problem.name,
        "objective": DESCRIPTIONS[objective_name(problem)],
    }
    use_locking(config.output.hdf5_locking)  # for the writer and the metrics stored after the run
    return ResultsWriter(
        config.output_path(), attrs=attrs, dim=problem.dim, n_workers=n_workers,
        trace_extra=method.trace_columns, problem_attrs=problem_attrs, state_shapes=method.state_shapes(),
        resume=resume, background=background, graph=graph, staging=staging, compression=config.output.compression,
    )
