"""A round of compressed jobs (Shadowheart SGD, QSGD) computed as one block in the simulator, bit for bit.

When a COMPRESSED job with a RandK compressor completes, the jobs still running at the same point (the rest of
a synchronous round) are taken with it: each worker's draws are made now, in the order its stream would give
them at the job's completion (the gradient's noise, then the message's seed: worker.execute's draws), the
gradients are computed in one block (Problem.noise_model, at the one point), and the messages' indices are drawn
in one block (RandK.draw_ahead). Each job's message is still encoded when the job completes, from its gradient and
seed, so the results, the streams after them and the file are those of the per-event path. A worker's jobs
draw only from its own stream, one job at a time, so drawing a running job's numbers early changes nothing, unless
the job is cancelled (it would never have drawn): then the stream is put back (`put_back`).
"""

from __future__ import annotations

import math

import numpy as np

from ...compression import RandK, compressor_from_code, draw_seed
from ...methods.base import JobKind
from ...problems.noise import GradientNoise

BLOCK_FLOATS = 2**18  # gradient floats of one block at most (2 MiB)
BLOCKS_ENABLED = True  # tests turn blocks off to compare with the per-event path
_COMPRESSED = JobKind.COMPRESSED


class CompressedBlocks:
    """The simulator's compressed jobs drawn ahead: their gradients and seeds, until each job completes."""

    def __init__(self, sim):
        self.sim = sim
        self.ahead: dict[int, tuple[np.ndarray, int]] = {}  # job id -> (its gradient sum, its message's seed)
        self.saved: dict[int, tuple[int, dict]] = {}  # worker -> (job id drawn ahead, its stream's state before)
        # Completions that found no job to share a block with (jobs at other points: an asynchronous method)
        # make the next ones skip the search, twice as many each time, as it costs a pass over the workers.
        self.misses = self.skip = 0

    def payload(self, worker: int, entry: tuple) -> np.ndarray | None:
        """The message of the completed COMPRESSED job `entry` (not failing), or None to leave it to worker.execute."""
        job = entry[1]
        found = self.ahead.pop(entry[0], None)
        if found is None:
            found = self._block(worker, entry)
            if found is None:
                return None
        else:
            self.saved.pop(worker, None)
        vector, seed = found
        return compressor_from_code(job.compressor, job.compress_param).encode_seeded(vector, job.copies, seed)

    def put_back(self, workers) -> None:
        """Cancelled workers: a job drawn ahead never draws in the per-event path, so its stream goes back."""
        for worker in [worker for worker in workers if worker in self.saved]:
            job_id, state = self.saved.pop(worker)
            if self.ahead.pop(job_id, None) is not None:
                self.sim.contexts[worker].data_rng.bit_generator.state = state

    def _block(self, worker: int, entry: tuple) -> tuple[np.ndarray, int] | None:
        """Draw the completed job's numbers and those of its round mates; the completed job's (gradient, seed)."""
        sim, job = self.sim, entry[1]
        compressor = compressor_from_code(job.compressor, job.compress_param)
        limit = BLOCK_FLOATS // sim.dim
        if (not BLOCKS_ENABLED or not isinstance(compressor, RandK) or limit < 2 or not _counts_fit(job)
                or sim.contexts[worker].check_finite or sim.noise_model(job.batch) is None):
            return None
        if self.skip:
            self.skip -= 1
            return None
        members = [(worker, entry)] + self._mates(entry, limit - 1)
        if len(members) == 1:
            self.misses = self.skip = min(2 * self.misses + 1, 1023)
            return None
        self.misses = 0
        # Members with one noise model (batch size) side by side, the completed job first (streams are per worker).
        models = [sim.noise_model(member[1].batch) for _, member in members]
        order = [0] + sorted(range(1, len(members)), key=lambda row: id(models[row]))
        members, models = [members[row] for row in order], [models[row] for row in order]
        draws = np.zeros((len(members), max(model.width for model in models)))
        seeds = []
        for row, ((member_worker, member), model) in enumerate(zip(members, models)):
            rng = sim.contexts[member_worker].data_rng
            if row:  # the completed job draws now, as per event; the others ahead of their completion
                self.saved[member_worker] = (member[0], rng.bit_generator.state)
            if model.width:
                model.draw(rng, draws[row:row + 1, :model.width])
            seeds.append(draw_seed(rng))
        gradients = self._gradients(sim._resolve(entry[2]), models, draws)
        gradients *= np.array([member[1].batch for _, member in members], dtype=float)[:, None]  # gradient sums
        compressor.draw_ahead(seeds, sim.dim, [member[1].copies for _, member in members])
        for row in range(1, len(members)):
            self.ahead[members[row][1][0]] = (gradients[row], seeds[row])
        return gradients[0], seeds[0]

    def _gradients(self, x: np.ndarray, models: list, draws: np.ndarray) -> np.ndarray:
        """Rows: the stochastic gradients at x of each row's noise model and draws (GradientNoise.gradient's
        numbers: full_grad(x) changed by the draws; a model with gradients of its own computes them)."""
        problem, dim = self.sim.problem, self.sim.dim
        gradients = np.empty((len(models), dim))
        full = None
        start = 0
        while start < len(models):  # runs of rows with one model
            model, stop = models[start], start + 1
            while stop < len(models) and models[stop] is model:
                stop += 1
            points, rows = np.broadcast_to(x, (stop - start, dim)), slice(start, stop)
            if type(model).gradients is GradientNoise.gradients:
                if full is None:
                    full = problem.full_grad(x)
                gradients[rows] = full
                model.apply(gradients[rows], points, draws[rows, :model.width])
            else:
                gradients[rows] = model.gradients(problem, points, draws[rows, :model.width])
            start = stop
        return gradients

    def _mates(self, entry: tuple, limit: int) -> list[tuple[int, tuple]]:
        """Up to `limit` (worker, entry) of the other running, finite, non-failing jobs like `entry`, at its point."""
        sim, point, job = self.sim, entry[2], entry[1]
        code, param, ahead, noise_model = job.compressor, job.compress_param, self.ahead, sim.noise_model

        def like(other: tuple) -> bool:
            other_job = other[1]
            return (other[2] is point and other_job.kind is _COMPRESSED and other_job.compressor == code
                    and other_job.compress_param == param and not other[6] and other[5] != math.inf
                    and other[0] not in ahead and _counts_fit(other_job) and noise_model(other_job.batch) is not None)

        mates = [(worker, other) for worker, other in enumerate(sim.running) if other is not None and like(other)]
        for group in sim.groups:  # a group's jobs still running: from its next position on, still its members
            if group.point is not point or group.job.kind is not _COMPRESSED or len(mates) >= limit:
                continue
            start = group.next
            alive = start + np.flatnonzero(sim.member_of[group.worker_array[start:]] == group.id_array[start:])
            if alive.size:
                group._listed(int(alive[-1]))
            for position in alive.tolist():
                other = group.entry(position)
                if like(other):
                    mates.append((group.workers[position], other))
        return mates[:limit]


def _counts_fit(job) -> bool:
    """Whether the job's batch and copies are positive ints: a job with others fails in worker.execute, at its
    own completion, which a block must not bring forward."""
    return type(job.batch) is int and job.batch >= 1 and type(job.copies) is int and job.copies >= 1
