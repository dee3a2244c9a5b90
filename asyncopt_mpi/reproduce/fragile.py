"""`fragile`: Fragile SGD vs Minibatch SGD on a 10 x 10 mesh and torus, rho in {0.1, 1, 10} (Tyurin & Richtarik 2024).

Seed 004 keeps only the figure's caption ("Comparison of the accuracy of Fragile SGD and Minibatch SGD
on a 2D-Mesh under slow communication", line 23); the setting is the authors' public code (github
k3nfalt/optimal-decentralized-optimization): its README's three commands (`--algorithm_names
minibatch_sgd fragile --graph torus --graph_dist_scale 0.1 / 1.0 / 10.0`, "README" below) and
code/distributed_optimization_library/experiments/asynchronous/config_async.py ("CODE"). The code runs
graphs on the quadratic only (CODE: `assert args.task == 'quadratic'`), so the caption's accuracy is
f(x) - f*. Its `add_torus` (asynchronous/algorithm_with_graphs.py) links (i, j) to (i +- 1, j) and
(i, j +- 1) inside the grid only, with no wrap-around: the project's mesh; the torus panels are the
project's wrap-around graph beside it.
"""

from __future__ import annotations

from .experiment import Claim, Experiment, MethodSpec, Panel, Setting

README = "authors' code, README.md"
CODE = "authors' code, config_async.py"
GRAPH = "authors' code, algorithm_with_graphs.py add_torus"
HOP = ("--graph_dist_scale {rho} ({CODE} line 132: each float of a d-float vector takes rho/d seconds, so "
       "rho seconds per hop)")


def _panel(topology: str, rho: float, horizon: tuple[float, float]) -> Panel:
    where = (f"{README} --graph torus, whose grid has no wrap-around ({GRAPH}); seed 004 line 23 (2D-Mesh)"
             if topology == "mesh" else "the project's wrap-around torus beside the paper's mesh (no counterpart "
             "in the authors' code)")
    return Panel(f"{topology}, rho = {rho:g}", (
        Setting("graph.topology", topology, topology, where),
        Setting("graph.rho", rho, rho, f"{README} " + HOP.format(rho=rho, CODE=CODE)),
        Setting("stop.time", horizon[0], horizon[1], f"{README} runs to --stop_time 1e6 s; here long enough for "
                "both methods' curves to flatten (minibatch SGD's step: about 2 x 10 hops x rho + 1 s); small: about "
                "twice Fragile SGD's time to the target"),
        Setting("output.snapshot_every", horizon[0] / 100, horizon[1] / 10, "plot resolution (small: a snapshot "
                "flushes the run's rows to its file, a fifth of a small run's CPU at 20 a run)"),
    ))


# (paper, small) horizons: minibatch SGD needs about 20 steps of 2 x diameter x rho + 1 s to flatten; the small
# ones end where the claim is decided, about 2 x Fragile SGD's time to the target (35 s, 100 s, 200 s), which
# keeps the CI short (Fragile's runs cost in proportion to the horizon)
HORIZONS = {0.1: (1000.0, 100.0), 1.0: (2000.0, 200.0), 10.0: (10000.0, 400.0)}

EXPERIMENT = Experiment(
    name="fragile",
    paper="seed 004: Fragile SGD (Tyurin, Richtarik, NeurIPS 2024, arXiv 2405.16218)",
    figure_ref="Figure (seed 004 line 23)",
    description="quadratic on a 10 x 10 mesh and torus, rho in {0.1, 1, 10}: Fragile SGD vs Minibatch SGD",
    settings=(
        Setting("problem.name", "quadratic", "quadratic", f"{README} --task quadratic; {CODE} generate_task: "
                "TridiagonalQuadraticFunction (worst case), x0 = sqrt(d) e_1 (--quad_strongly_convex_constant "
                "1e-6 applies to the code's finite sums only)"),
        Setting("problem.dim", 1000, 100, f"{README} --quad_dim 1000"),
        Setting("problem.noise", 0.001, 0.1, f"{README} --quad_noise 0.001 (zero_last's p); small: Gaussian "
                "noise of 0.1 per coordinate"),
        Setting("problem.noise_type", "zero_last", "add", f"{README} --quad_type_noise zero-last; small: add, as "
                "zero_last's rare large draws make a few short runs a lottery (one tuning seed picks a lucky lr)"),
        Setting("workers.n", 100, 16, f"{README} --num_nodes 100 (a 10 x 10 grid); small: 4 x 4"),
        Setting("workers.compute", "fixed", "fixed", f"{README} --delays equal"),
        Setting("workers.compute_profile", "equal", "equal",
                f"{README} --delays equal ({CODE} lines 110-111: delays = [1] * num_nodes)"),
        Setting("workers.compute_scale", 1.0, 1.0, f"{CODE} lines 110-111 (one second per gradient)"),
    ),
    panels=tuple(_panel(topology, rho, HORIZONS[rho]) for topology in ("mesh", "torus") for rho in HORIZONS),
    methods=(
        MethodSpec("fragile_sgd", (0.25, 0.5, 1.0),
                   (Setting("method.S", 40, 8, f"{README} --rennala_batch_size_list 40 80 ... 500 (the code "
                            "tunes the batch with the step size; here its first value, which steps most often); "
                            "small: half the workers"),),
                   note=f"step sizes in powers of 2 as {CODE} gamma_multiply (gamma = 1 x 2^i, tuned); the pivot "
                        "and its workers by the paper's t* rule (the code: the graph's centre and every worker)"),
        MethodSpec("minibatch_sgd", (0.25, 0.5, 1.0),
                   note=f"one gradient per worker and step, the point down and the sum up the tree from the graph's "
                        f"centre ({GRAPH.replace(' add_torus', '')} MiniBatchSGD); powers of 2 as {CODE} "
                        "gamma_multiply"),
    ),
    claims=(
        Claim("The Fragile SGD method does not require synchronization and automatically ignores nodes that are too "
              "slow or too far from the central node. [...] Comparison of the accuracy of Fragile SGD and Minibatch "
              "SGD on a 2D-Mesh under slow communication",
              "seed 004 lines 20 and 23; seed 001 line 1414 (Minibatch SGD: (1 + sigma^2/(n eps)) max{max tau_i->j, "
              "max h_i} L Delta/eps)", "before", "fragile_sgd", "minibatch_sgd",
              look_at="the gap grows with rho: minibatch SGD waits 2 x diameter x rho + 1 s a step, Fragile SGD "
                      "about t* (its S gradients from the workers near the pivot); at rho = 0.1 the two are within a "
                      "factor 2 and the zero_last noise's rare large draws decide single seeds; check both grids "
                      "are bracketed and method.S"),
    ),
    target={"paper": 0.05, "small": 0.1},  # f - f* both pass within each horizon, below the first steps' drop
    paper_time="about 25 min (measured: 1,486 s with --processes 1 on the 2-core machine while the test suite and "
               "another reproduction ran beside it)",
)
