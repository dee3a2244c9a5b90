"""The MPI parameter-server runtime: rank 0 runs the server loop, ranks 1..n the worker loop (`--backend mpi`).

- `loops.py`: MpiServer (rank 0's non-blocking loop) and WorkerLoop (a worker rank).
- `graph.py`: the decentralized methods over MPI (worker ranks talk to their graph neighbours,
  rank 0 records); what it records is runtime/graph/core.py's, as in the graph simulator.
- `rule.py`: the server's direct path for a method's StepAndRestart rule (no Result, Job or
  method call per message).
- `protocol.py`: the wire encoding of jobs and results (float64 headers, typed payloads).
- `backoff.py`: polling with an adaptive sleep, so waiting ranks leave the cores to working ones.
- `emulation.py`: the end-of-run warning when workers did not keep up with the timing model.
- `text.py`: strings MPI hands over (library version, host names), cleaned before they are stored.

Every module of the package that imports mpi4py lives here (loops.py and graph.py, loaded when a
run starts under MPI; tests/test_layout.py checks it), so the simulators never load MPI. Rank 0's
watchdogs (runtime/guardian.py, runtime/host_watch.py) and the run's session (runtime/session.py)
sit beside this package.
"""
