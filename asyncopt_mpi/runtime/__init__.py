"""Runtimes that execute methods, and the Server contract they share.

Subpackages, one per runtime:
- `sim/`: the virtual-clock simulator (`--backend sim`), one process.
- `mpi/`: the MPI parameter server (rank 0 server, ranks 1..n workers) and the decentralized
  methods over MPI; the only place that imports mpi4py.
- `graph/`: the decentralized methods' recording core and their virtual-clock runtime.

Shared by all of them, here: `server.py` (ServerCore: what a method sees as `server`, recording
and stop rules), `points.py` (numbered points), `worker.py` (a worker's data stream and math),
`signals.py` (signals that end a run cleanly), `build.py` (the parts of a run from a config),
`session.py` (a run from start to end and its exit status), `heap.py` (freed memory kept in the
heap), and the run's watchdog processes `guardian.py` and `host_watch.py` (started as scripts).
"""
