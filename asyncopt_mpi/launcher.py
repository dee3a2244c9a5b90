"""The parallel launcher that started this process, as its environment tells (standard library only)."""

from __future__ import annotations

import os


def launched_ranks() -> tuple[int, int]:
    """(ranks, this rank) of the launcher that started this process, from its environment
    (MPICH/hydra and Slurm's PMI, Open MPI, srun); (1, 0) when not launched as a parallel job."""
    for size_key, rank_key in (("PMI_SIZE", "PMI_RANK"), ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"),
                               ("SLURM_STEP_NUM_TASKS", "SLURM_PROCID")):
        size = os.environ.get(size_key, "")
        if size.isdigit() and int(size) > 1:
            rank = os.environ.get(rank_key, "0")
            return int(size), int(rank) if rank.isdigit() else 0
    return 1, 0
