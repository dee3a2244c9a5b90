"""The virtual-clock simulator: one process runs the server, the workers and their clocks (`--backend sim`).

A run is a heap of job completion times (`server.SimServer`); the clock jumps from one completion
to the next. The simulator moves events by four paths, and one contract holds for all of them:
they pop the events in the same order (by finish time, then by the sequence number the job got
when it started), make the same draws from the same worker streams in the same order, give the
same job ids, sequence numbers, rows and points, and so write the same results file, every
dataset bit for bit. A path is only a faster way to do what the per-event path does.

- Per event (`server.py`): every job is one heap entry; a completion is popped, the worker's
  result is delivered, and the method's `on_result` decides what comes next. Always available,
  and the path every other one must reproduce.
- Runs (`runs.py`, `batch_runs.py`): taken when the method states a StepAndRestart rule for every
  result (`Method.every_result`: asynchronous SGD with pure assignment, Rennala SGD's batches), job
  times are fixed, the rule's job is a plain gradient job, the problem has a noise model, and
  nothing else is in play (no deltas, queues, groups or crashes). The jobs then leave the heap
  for per-worker arrays, and every event before `first finish + shortest job` (restarts
  included, wave by wave) is handled with array operations, steps deferred and computed in
  blocks. A run ends early where the per-event path would act: a snapshot, or a gradient,
  iteration or time limit.
- Groups (`job_groups.py`): taken by `server.assign_many` when the chosen workers are distinct and
  idle and no deltas are sent. The jobs of that call are one group, and only the group's earliest
  running job sits in the heap; cancelling or starting the group costs array operations.
- Compressed rounds (`compressed_blocks.py`): when a RandK compressed job completes, the jobs still
  running at its point (the rest of its round) make their draws then, each in its own stream's
  order, and their gradients and messages' indices are computed in one block; each message is still
  encoded when its job completes. A cancelled job's stream is put back.

Tests that hold the paths to the contract by comparing files bit for bit: tests/test_sim_runs.py
(runs vs per event, random settings, resumes), tests/test_sim_groups.py (groups vs one entry per
job, with cancels, crashes and resumes), tests/test_sim_reference.py (the per-event path vs the
numbers of an older core), and the bulk-path tests (tests/test_logistic_bulk.py,
test_zero_last_bulk.py, test_quadratic_finite_sum_bulk.py: runs, per event and a gradient per call,
through tests/same_files.py), tests/test_sim_compressed_blocks.py (compressed rounds, with cancels).
Switches that turn a path off for them: `runs.RUNS_ENABLED`, `server.GROUPS_ENABLED`,
`compressed_blocks.BLOCKS_ENABLED`.

`collector.py` runs the loop with fewer garbage-collector passes. Nothing here imports MPI.
"""
