"""Compare three methods from Python, no command line: two built-ins and the FedBuff plugin.

Runs each in the simulator in this process with asyncopt_mpi.run, reads the results back and
prints one row per method. `python examples/compare_in_python.py [OUTPUT_FOLDER]`
"""

import os
import sys
import tempfile

import numpy as np

import asyncopt_mpi as ao

HERE = os.path.dirname(os.path.abspath(__file__))
PLUGINS = [os.path.join(HERE, "fedbuff.py"), os.path.join(HERE, "least_squares.py")]


def main(folder: str) -> None:
    data = os.path.join(folder, "least_squares.npz")
    rng = np.random.default_rng(0)
    A = rng.standard_normal((500, 20))
    np.savez(data, A=A, b=A @ rng.standard_normal(20) + 0.1 * rng.standard_normal(500))
    base = {
        "problem": {"name": "least_squares", "data": data},
        "workers": {"n": 16, "compute": "sqrt", "compute_scale": 0.01},  # worker i needs 0.01 sqrt(i) s per gradient
        "stop": {"time": 3.0},
        "plugins": {"plugins": PLUGINS},
    }
    runs = {
        "async_sgd": {"lr": 0.02},
        "rennala_sgd": {"lr": 0.1, "batch": 8},
        "fedbuff": {"lr": 0.05, "buffer": 4},
    }
    rows = []
    for name, params in runs.items():
        config = dict(base, method={"name": name, **params}, output={"path": os.path.join(folder, f"{name}.h5")})
        result = ao.run(config)  # the simulator, in this process; ao.run(config, "mpi", ranks=17) for mpiexec
        metrics, trace = result.metrics, result.trace
        reached = np.flatnonzero(metrics["suboptimality"] <= 1e-3)
        rows.append((name, len(trace["time"]), int(result.workers["grads"].sum()), metrics["suboptimality"][-1],
                     metrics["time"][reached[0]] if reached.size else float("nan")))
    print(f"{'method':<12} {'updates':>8} {'gradients':>10} {'f - f*':>10} {'time to 1e-3 (s)':>17}")
    for name, updates, grads, gap, when in rows:
        print(f"{name:<12} {updates:>8} {grads:>10} {gap:>10.3g} {when:>17.3g}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        os.makedirs(sys.argv[1], exist_ok=True)
        main(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as scratch:
            main(scratch)
