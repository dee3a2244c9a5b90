"""`python -m asyncopt_mpi` is the `asyncopt` command."""

from .cli import main

main()
