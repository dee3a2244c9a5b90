"""Runtimes that execute methods: `mpi` (rank 0 server, ranks 1..n workers) and `sim` (virtual clock)."""
