"""asyncopt-mpi: asynchronous distributed optimization methods on an MPI parameter server and a virtual-clock simulator."""

__version__ = "0.1.0"
