"""asyncopt-mpi: asynchronous distributed optimization methods on an MPI parameter server and a virtual-clock simulator.

The package is a library first and a command (`asyncopt`) second. The public API is what this
module exports; everything else may change. A method is a server-side policy with two hooks,
`start` and `on_result`, that touches vectors only through the runtime (`server.step`,
`server.vector_sum`, `result.vector`); a problem is an objective with gradients. Both register
by name and then work in configs, on the command line, in the simulator and over MPI::

    import asyncopt_mpi as ao

    @ao.register_method
    class PlainAsyncSGD(ao.Method):
        name = "plain_async_sgd"
        description = "every gradient is applied when it arrives"

        def start(self, server):
            for worker in range(server.n_workers):
                server.assign(worker, ao.Job(ao.JobKind.GRAD, server.version, self.batch))

        def on_result(self, server, worker, result):
            server.step(result, self.lr, grads_used=result.n_grads, max_delay=result.delay)
            server.assign(worker, ao.Job(ao.JobKind.GRAD, server.version, self.batch))
            return True  # used (False: dropped; counted in /events accepted = 0)

    result = ao.run({
        "problem": {"name": "quadratic", "dim": 20, "noise": 0.01},
        "method": {"name": "plain_async_sgd", "lr": 0.1},
        "workers": {"n": 8},
        "stop": {"time": 5.0},
        "output": {"path": "plain.h5"},
    })                                     # backend="mpi", ranks=9 runs it under mpiexec
    print(result.metrics["suboptimality"][-1], result.status)
    frame = ao.load("plain.h5").metrics_frame()   # with pandas installed

For the MPI ranks, a method defined in a script must live in a module or .py file given as a
plugin (`plugins=[...]`, `--plugin`, a `[plugins]` table or an entry point); see README
"Writing a method", "Writing a problem" and "Plugins".

A method that treats every result alike may also return that rule from `every_result` (a
`StepAndRestart`): the simulator then takes many results per pass and the MPI server applies
it without a method call per message, with the same numbers. `method_class(name)` is the class
registered under a name, to subclass into a variant.

A decentralized method (no server in the math; workers are nodes of a `[graph]`) subclasses
`DecentralizedMethod` and builds one node policy per node in `make_nodes(x0, lr, batch, plan,
nodes)`; a policy reacts to its own gradients, to `Message`s and to free links through its
`Net`, and labels messages with a `MessageKind` or its own number. `Plan` holds the `Graph`, the
pivot and its `Tree`; `NeighbourRoutes` sends to graph neighbours over the direct link and
`PivotRecord` records a round-based method's rounds at the pivot. See README "Writing a
decentralized method".
"""

__version__ = "0.5.0"

from typing import TYPE_CHECKING, Any

from . import threads  # noqa: E402,F401  (first: thread pools are sized when numpy loads)
from . import early_signals  # noqa: E402,F401  (then: a stop signal while the command loads ends it cleanly)
from .errors import ConfigError, DataError, RunError  # noqa: E402

# The rest of the API loads on first use (PEP 562): `import asyncopt_mpi`, `asyncopt --version` and
# `--help` then start without numpy, h5py or the method and problem modules.
_LAZY = {
    "Job": "methods", "JobKind": "methods", "Method": "methods", "Result": "methods", "Server": "methods",
    "StepAndRestart": "methods", "register_method": "methods", "Problem": "problems",
    "register_problem": "problems", "RunResult": "api", "load": "api", "load_config": "api", "load_many": "api",
    "run": "api", "VectorSum": "methods.vectors", "method_class": "methods",
    "DecentralizedMethod": "methods.decentralized", "Message": "methods.decentralized",
    "MessageKind": "methods.decentralized", "Net": "methods.decentralized", "Plan": "methods.decentralized",
    "NeighbourRoutes": "methods.graph_rounds", "PivotRecord": "methods.graph_rounds", "Graph": "graph", "Tree": "graph",
}

if TYPE_CHECKING:  # what the lazy names are, for type checkers
    from .api import RunResult, load, load_config, load_many, run
    from .graph import Graph, Tree
    from .methods import Job, JobKind, Method, Result, Server, StepAndRestart, method_class, register_method
    from .methods.decentralized import DecentralizedMethod, Message, MessageKind, Net, Plan
    from .methods.graph_rounds import NeighbourRoutes, PivotRecord
    from .methods.vectors import VectorSum
    from .problems import Problem, register_problem

__all__ = [
    "ConfigError", "DataError", "DecentralizedMethod", "Graph", "Job", "JobKind", "Message", "MessageKind", "Method",
    "NeighbourRoutes", "Net", "PivotRecord", "Plan", "Problem", "Result", "RunError", "RunResult", "Server",
    "StepAndRestart", "Tree", "VectorSum", "__version__", "load", "load_config", "load_many", "method_class",
    "register_method", "register_problem", "run",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value  # later look-ups find it without this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
