"""`decentralized`: Fragile and Amelie SGD against four decentralized baselines, slow links, label-sorted shards.

Seed 001's decentralized table (lines 1411-1417) sets Amelie SGD's time complexity beside Minibatch
SGD, RelaySGD and Gradient Tracking (Vogels et al., 2021; Liu et al., 2024) and asynchronous SGD on
graphs (Even et al., 2024); seed 004 says Fragile SGD "ignores nodes that are too slow or too far" and
Amelie SGD "is tailored for heterogeneous conditions". Neither seed runs the baselines: the seeds give
their complexities and comments only, so each check of a comment is our reading of it (the claims
say so). The setting joins the two experiments written for these papers: the graphs and the slow
links of `fragile` (the authors' public code, github k3nfalt/optimal-decentralized-optimization: a
10 x 10 grid with rho seconds per hop, "CODE" below) and the label-sorted logistic regression of
`amelie` (jobs/amelie_heterogeneous.toml, "JOB": the authors' code runs graphs on the homogeneous
quadratic only). Links are slow: a hop (rho = 1 s) takes as long as the slowest worker's gradient or longer.
On the small scale's 3 x 3 grids the centre's tree is 2 hops deep on both graphs: the torus's wrap-around
links serve mostly the gossip methods (Gradient Tracking, asynchronous SGD).
"""

from __future__ import annotations

from .experiment import Claim, Experiment, Figure, MethodSpec, Panel, Setting

SEED = "seed 001"
JOB = "jobs/amelie_heterogeneous.toml"
README = "authors' code, README.md"
CODE = "authors' code, config_async.py"
GRAPH = "authors' code, algorithm_with_graphs.py add_torus"
TABLE = f"{SEED} lines 1411-1417 (Decentralized Setup: Amelie SGD)"
OURS = "the claim is ours: the seed names the baseline with a comment and no experiment"
RHO = 1.0  # seconds per hop; the slowest gradient takes 0.9 s (small) / 1 s (paper)


def _panel(topology: str) -> Panel:
    where = (f"{README} --graph torus, whose grid has no wrap-around ({GRAPH}); seed 004 line 23 (2D-Mesh)"
             if topology == "mesh" else "the project's wrap-around torus beside the paper's mesh (as in `fragile`)")
    return Panel(f"{topology}, rho = {RHO:g}", (
        Setting("graph.topology", topology, topology, where),
        Setting("graph.rho", RHO, RHO, f"{README} --graph_dist_scale 1.0 ({CODE} line 132: rho seconds per hop); "
                "slow: a hop takes at least the slowest worker's gradient time (seed 004 line 23: slow communication)"),
    ))


EXPERIMENT = Experiment(
    name="decentralized",
    paper="seed 001/004: Fragile and Amelie SGD (Tyurin, Richtarik, NeurIPS 2024, arXiv 2405.16218) against RelaySGD, "
          "Gradient Tracking, asynchronous decentralized SGD",
    figure_ref="Decentralized table (seed 001 lines 1411-1417)",
    description="logistic regression, labels sorted across the workers of a mesh and a torus with slow links: Fragile, "
                "Amelie, Minibatch SGD over the tree, RelaySGD, Gradient Tracking, asynchronous decentralized SGD",
    settings=(
        Setting("problem.name", "logistic", "logistic", f"{JOB} (the seeds' table has no experiment; CODE runs graphs "
                "on the homogeneous quadratic only)"),
        Setting("problem.classes", 10, 3, f"{JOB} has 3 classes over 9 workers; paper: 10, so each of the 100 "
                "workers holds one class"),
        Setting("problem.dim", 20, 20, JOB),
        Setting("problem.samples", 6000, 600, f"{JOB} has 2000; paper: a multiple of workers.n so the shards are equal "
                "and the (1/n) sum_i f_i of Amelie, RelaySGD, Gradient Tracking and asynchronous SGD is the sample "
                "mean the others minimise; small: shards of 67 and 66 rows, so the two objectives weigh a row within "
                "1% of each other"),
        Setting("workers.n", 100, 9, f"{README} --num_nodes 100 (a 10 x 10 grid, as `fragile`); small: {JOB}'s 3 x 3"),
        Setting("workers.compute", "fixed", "fixed", JOB),
        Setting("workers.compute_profile", "linear", "linear", f"{JOB} (worker i takes i x compute_scale: "
                f"heterogeneous compute, {TABLE})"),
        Setting("workers.compute_scale", 0.01, 0.1, f"{JOB} has 0.02 with rho 0.05; here the slowest worker "
                "takes 1 s (paper) / 0.9 s (small), at most a hop's rho"),
        Setting("workers.data_split", "by_label", "by_label", f"{JOB}: shards sorted by label ({SEED} line 1411: "
                "heterogeneous setup, f = (1/n) sum_i f_i)"),
        Setting("stop.time", 3000.0, 200.0, "about 70 (paper) / 35 (small) steps of Minibatch SGD over the tree "
                "(2 x depth x rho + max h_i: 21 s on the 10 x 10 grid, 4.9 s on the 3 x 3)"),
        Setting("output.snapshot_every", 30.0, 10.0, "plot resolution (a snapshot evaluates the loss on every "
                "sample)"),
    ),
    panels=(_panel("mesh"), _panel("torus")),
    # first grids centred on what a first small-scale tuning chose (tune.py extends them until bracketed)
    methods=(
        MethodSpec("amelie_sgd", (8.0, 16.0, 32.0), note="S = n (the default); every worker computes while the sums "
                   "travel, each weighed 1/s_i; paper: the first paper-scale run's best was 512, the largest of its "
                   "4 extensions from the small scale's grid, so the paper scale starts around it",
                   paper_grid=(256.0, 512.0, 1024.0)),
        MethodSpec("fragile_sgd", (0.125, 0.25, 0.5), note="S = n; only t*'s workers near the pivot compute"),
        MethodSpec("minibatch_sgd", (4.0, 8.0, 16.0), note="one gradient per worker and step over the tree from the "
                   f"graph's centre ({SEED} line 1414)"),
        MethodSpec("relay_sgd", (8.0, 16.0, 32.0), note="one gradient per node and round on the centre's spanning tree "
                   "(Vogels et al., NeurIPS 2021, Algorithm 1)"),
        MethodSpec("gradient_tracking", (4.0, 8.0, 16.0), note="one gradient per node and round, Metropolis weights "
                   "over the graph's links (Pu & Nedic 2021; Koloskova, Lin & Stich 2021)"),
        MethodSpec("decentralized_async_sgd", (0.5, 1.0, 2.0), note="local steps as gradients complete, pairwise "
                   "averages on every link (Even, Koloskova & Massoulie, AISTATS 2024); the file follows the centre's "
                   "model"),
    ),
    claims=(
        Claim("Minibatch SGD: L Delta/eps max{(1 + sigma^2/(n eps)) max{max tau_i->j, max h_i}}: suboptimal if "
              "sigma^2/eps is large; Amelie SGD and Lower Bound (Thm. 7 and Cor. 2): L Delta/eps max{max tau_i->j, "
              "max h_i, sigma^2/(n eps) (1/n sum h_i)}: Optimal up to a constant factor",
              f"{SEED} lines 1414 and 1417", "before", "amelie_sgd", "minibatch_sgd",
              look_at="both wait 2 x depth x rho a step; Amelie's gain is the gradients its workers add while the "
                      "sums travel (variance / s_i), so it needs sigma^2/eps large: check the target is near the "
                      "noise floor and not reached in the first steps"),
        Claim("RelaySGD, Gradient Tracking (Vogels et al., 2021) (Liu et al., 2024): >= max_i L_i Delta/eps "
              "sigma^2/(n eps) max_i h_i; requires local L_i-smooth. of f_i, suboptimal if sigma^2/eps is large",
              f"{SEED} lines 1415 and 1417", "before", "amelie_sgd", "relay_sgd",
              look_at="RelaySGD's round is one hop (rho + max h_i), Amelie's step 2 x depth hops: the table's bound "
                      "on RelaySGD is its statistical term only, so Amelie leads only where sigma^2/(n eps) max h_i "
                      "outweighs the hops, i.e. at a target below RelaySGD's noise floor (one gradient per node and "
                      "round); at the small scale over 5 seeds RelaySGD ends near 0.065 on the mesh and Amelie near "
                      "0.03, and Amelie reaches f - f* = 0.05 first in 4 of 5 seeds"),
        Claim("RelaySGD, Gradient Tracking (Vogels et al., 2021) (Liu et al., 2024): >= max_i L_i Delta/eps "
              "sigma^2/(n eps) max_i h_i; requires local L_i-smooth. of f_i, suboptimal if sigma^2/eps is large",
              f"{SEED} lines 1415 and 1417", "before", "amelie_sgd", "gradient_tracking",
              look_at="as for RelaySGD: one gossip round is one hop, and the table's bound is its statistical term "
                      "only; check the target against both noise floors"),
        Claim("Asynchronous SGD (Even et al., 2024): requires similarity of the functions {f_i}, requires local "
              f"L_i-smooth. of f_i ({OURS}: on label-sorted shards Amelie ends lower)",
              f"{SEED} lines 1416-1417", "below", "amelie_sgd", "decentralized_async_sgd", window=0.2,
              look_at="a fast worker takes more local steps on its own class, so the models drift towards the fast "
                      "workers' classes; the gossip over slow links pulls them back only every 2 rho seconds: check "
                      "the bias against the noise floors (both near the target)"),
        Claim("Amelie SGD is tailored for heterogeneous conditions, where each node may have its own dataset (table: "
              "Fragile SGD: Data Heterogeneity x; Amelie SGD: V)",
              f"seed 004 line 25; {SEED} lines 547-548", "below", "amelie_sgd", "fragile_sgd", factor=2.0,
              window=0.2,
              look_at="Fragile SGD averages the gradients of t*'s workers only, so on label-sorted shards it "
                      "minimises their classes' loss; if it does not stall, check its participants (/graph)"),
        Claim("The Fragile SGD method does not require synchronization and automatically ignores nodes that are too "
              "slow or too far from the central node. [...] Comparison of the accuracy of Fragile SGD and Minibatch "
              "SGD on a 2D-Mesh under slow communication",
              "seed 004 lines 20 and 23 (the figure is on identical data, as `fragile`)", "before", "fragile_sgd",
              "minibatch_sgd",
              look_at="the seed's comparison is on identical data; on label-sorted shards the workers Fragile ignores "
                      "hold classes it never sees, so it stalls far above the target (expected: the table's Data "
                      "Heterogeneity x, seed 001 line 547)"),
    ),
    figures=(Figure(), Figure(y="accuracy")),
    # f - f* near the small scale's noise floors, where sigma^2/eps matters; the paper scale starts at 1.6 (10 classes)
    target={"paper": 0.1, "small": 0.07},
    paper_time="about 1.5 h (measured: 5,329 s with --processes 2 on the 2-core machine, 264 runs, a clean-clone CI "
               "check beside it for 20 of its minutes)",
)
