"""The runtime of decentralized methods: nodes on a worker graph that exchange messages over links.

The math of a decentralized run happens at the nodes (methods/decentralized.py's policies,
talking to the runtime through `Net`); the runtime moves their jobs and messages and records.

- `core.py`: GraphCore, what both graph runtimes record (the pivot's steps, results reaching
  the pivot, link hops, stop rules) on top of the shared ServerCore.
- `sim.py`: GraphSim, the virtual-clock runtime: node jobs and link messages in one event heap.

Their MPI counterpart, where worker ranks talk to their graph neighbours, is runtime/mpi/graph.py:
every module that imports mpi4py lives in runtime/mpi/, so nothing here loads MPI.
"""
