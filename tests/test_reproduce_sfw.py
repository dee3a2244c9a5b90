"""`asyncopt reproduce sfw-speedup` and `sfw-pnn` (seed 003) at small scale, and the linear minimisation oracle
of a large matrix whose start vector lies in its null space (a zero minibatch gradient of the PNN)."""

from __future__ import annotations

import numpy as np

from asyncopt_mpi.problems.matrix import leading_singular_pair


def test_the_oracle_of_a_large_matrix_whose_start_vector_it_annihilates_is_its_top_pair():
    # Above DENSE_SVD_ENTRIES the oracle runs ARPACK from the all-ones vector, which stopped the run with
    # "ARPACK error -9: Starting vector is zero" for a zero gradient (a PNN minibatch with every margin >= 1).
    u, v = leading_singular_pair(np.zeros((300, 300)))
    assert np.linalg.norm(u) == np.linalg.norm(v) == 1.0
    annihilating = np.zeros((300, 300))
    annihilating[:, 0], annihilating[:, 1] = 1.0, -1.0  # annihilating @ ones = 0
    u, v = leading_singular_pair(annihilating)
    assert np.allclose(np.abs(v[:2]), np.sqrt(0.5)) and np.allclose(np.abs(u), 1 / np.sqrt(300))
    assert np.isclose(u @ annihilating @ v, np.linalg.norm(annihilating, 2))
