"""What a timing test may expect of an MPI run, derived from what the run recorded instead of an idle machine's clock.

On a loaded machine (more busy processes than cores) every job of an MPI worker also
waits for the scheduler: the server answers late, a sleep ends late, a computation is
preempted. The run records where the time went: per worker the modelled time of its
jobs (/workers/busy_time), the compute that ran past the model (/workers/overrun_time),
the time actually slept (/workers/sleep_time), and when each result arrived (/events).
The model's promise is then: worker i, whose jobs take tau_i each, finishes one job
every tau_i + l seconds, where l is the per-job time the machine withheld (the same
for every worker: one server, one scheduler). `predicted_grads` fits that single l to
all workers together and predicts each worker's count from its own recorded window;
a worker the runtime starved, or one that slept too little or too much, does not fit.
"""

from __future__ import annotations

import h5py
import numpy as np


def recorded(path) -> dict[str, np.ndarray]:
    """The per-worker table and the result arrival times of a results file."""
    with h5py.File(path, "r", swmr=True, libver="latest") as handle:
        table = {name: handle["workers"][name][()] for name in ("grads", "jobs", "busy_time", "sleep_time", "overrun_time")}
        table["event_time"] = handle["events"]["time"][()]
        table["event_worker"] = handle["events"]["worker"][()]
    return table


def predicted_grads(path, seconds_per_grad: list[float]) -> tuple[np.ndarray, np.ndarray, float]:
    """(gradients each worker computed, gradients the model predicts given the recorded time, withheld s per job).

    Worker i's window runs from when its first job started (first result minus its modelled
    duration) to its last result; in it, g_i jobs took g_i tau_i modelled seconds plus
    (g_i - 1) gaps of l. The withheld time l is fitted to all workers at once:
    l = sum_i (window_i - busy_i) / sum_i (g_i - 1); the prediction is
    g_i = (window_i + l) / (tau_i + l).
    """
    data = recorded(path)
    tau = np.asarray(seconds_per_grad, dtype=float)
    grads = data["grads"].astype(float)
    windows = np.zeros_like(tau)
    for worker in range(len(tau)):
        times = data["event_time"][data["event_worker"] == worker]
        per_job = data["busy_time"][worker] / max(data["jobs"][worker], 1)
        windows[worker] = times.max() - (times.min() - per_job)
    withheld = float((windows - data["busy_time"]).sum() / max((grads - 1).sum(), 1))
    return grads, (windows + withheld) / (tau + withheld), withheld


def graph_time_given(path) -> dict[str, float]:
    """What the machine gave the ranks of a decentralized (graph) run, from its /workers and /hops tables.

    A graph node adds a job's observed time (start to when it noticed the end) to busy_time, so
    busy_time - (completed jobs x modelled job time) is what the scheduler withheld (plus the
    elapsed part of jobs a new point replaced: an over- rather than an under-estimate).
      job_lateness: withheld seconds per completed job, over all workers (0 on an idle machine);
      compute_efficiency: modelled / observed job time (1 on an idle machine);
      link_efficiency: rho / mean(arrived - start) over the hops (1 on an idle machine).
    """
    from asyncopt_mpi.validate import load_config
    from asyncopt_mpi.timing import TimingModel

    with h5py.File(path, "r") as handle:
        text = handle.attrs["config"]
        busy = handle["workers"]["busy_time"][()]
        grads = handle["workers"]["grads"][()].astype(float)
        delay = handle["hops"]["arrived"][()] - handle["hops"]["start"][()]
        rho = handle["hops"]["rho"][()]
    config = load_config(None, [], backend="mpi", text=text.decode() if isinstance(text, bytes) else str(text))
    batch = config.method.batch
    job_time = np.asarray(TimingModel(config.workers, len(busy)).expected_compute(), dtype=float) * batch
    completed = grads / batch
    modelled = float((completed * job_time).sum())
    return {
        "job_lateness": max(0.0, float(busy.sum()) - modelled) / max(float(completed.sum()), 1.0),
        "compute_efficiency": min(1.0, modelled / float(busy.sum())) if busy.sum() > 0 else 1.0,
        "link_efficiency": min(1.0, float(rho.mean() / delay.mean())) if len(delay) else 1.0,
    }
