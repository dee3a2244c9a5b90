"""`malenia`: Malenia SGD on heterogeneous data (seed 001, Tyurin & Richtarik, NeurIPS 2023) vs Minibatch, Rennala SGD.

The seed gives Malenia SGD's method (lines 923-985), its time complexity beside Minibatch SGD's and the
lower bound (lines 987-1001), and the table that marks which methods allow data heterogeneity (lines
909-912), but no experiment, and the authors' public code (github k3nfalt/optimal-decentralized-optimization)
has no Malenia SGD. The setting is therefore the times of the seed's Rennala experiment (tau_i = sqrt(i),
n = 10,000; lines 855 and 860) on the project's heterogeneous data set (jobs/amelie_heterogeneous.toml,
"JOB" below: three-class logistic regression, shards sorted by label, so the fast workers hold one class).
Malenia's S is a multiple of n so that it collects more than one round (S = max(ceil(sigma^2/eps), n),
line 971); Minibatch SGD takes the same S gradients per step, S/n from each worker.
"""

from __future__ import annotations

from .experiment import Claim, Experiment, MethodSpec, Panel, Setting

SEED = "seed 001"
JOB = "jobs/amelie_heterogeneous.toml"
ROUNDS = 4  # S / n: gradients per worker and step of Minibatch SGD, Malenia's S in units of n


EXPERIMENT = Experiment(
    name="malenia",
    paper="seed 001: Malenia SGD (Tyurin, Richtarik, NeurIPS 2023)",
    figure_ref="Data heterogeneous regime",
    description="logistic regression, labels sorted across workers, tau_i = sqrt(i): Malenia SGD vs Minibatch SGD, "
                "Rennala SGD",
    settings=(
        Setting("problem.name", "logistic", "logistic", f"{JOB} (no Malenia experiment in the seed or the authors' "
                "code)"),
        Setting("problem.classes", 3, 3, JOB),
        Setting("problem.dim", 20, 20, JOB),
        Setting("problem.samples", 30000, 1600, f"{JOB} has 2000; a multiple of workers.n so the shards are equal "
                "and Malenia's (1/n) sum_i f_i is the sample mean the others minimise"),
        Setting("workers.compute", "sqrt", "sqrt", f"{SEED} line 855 (tau_i = sqrt(i))"),
        Setting("workers.compute_scale", 1.0, 1.0, f"{SEED} line 855 (seconds)"),
        Setting("workers.data_split", "by_label", "by_label",
                f"{JOB}: each worker sees one class ({SEED} line 919: the distributions D_i are allowed to be "
                "different)"),
        Setting("stop.time", 20000.0, 800.0, "the horizon of the seed's Rennala figure as "
                "jobs/rennala_quadratic.toml holds it: about 75 (paper) and 70 (small) of Malenia SGD's steps of "
                "(S/n) (1/n sum tau_i) seconds"),
        Setting("output.snapshot_every", 200.0, 20.0,
                "plot resolution (a snapshot evaluates the loss on every sample)"),
    ),
    panels=(Panel("n = 10000",
                  (Setting("workers.n", 10000, 16, f"{SEED} line 860 (Figure 3: # of workers n = 10000)"),)),),
    methods=(
        MethodSpec("malenia_sgd", (16.0, 32.0, 64.0),
                   (Setting("method.batch", ROUNDS * 10000, ROUNDS * 16,
                            f"S = {ROUNDS} n ({SEED} line 971: S = max(ceil(sigma^2/eps), n); sigma^2/eps is free)"),),
                   note=f"{JOB} has lr 2; rows of norm ~1 in d = 20 keep L small, and a first small tuning chose 32"),
        MethodSpec("minibatch_sgd", (16.0, 32.0, 64.0),
                   (Setting("method.batch", ROUNDS, ROUNDS, f"S / n: the same S = {ROUNDS} n gradients per step as "
                            "Malenia SGD, one share from each worker"),),
                   note="every worker's share at every step, so every shard weighs the same"),
        MethodSpec("rennala_sgd", (16.0, 32.0, 64.0),
                   (Setting("method.batch", ROUNDS * 10000, ROUNDS * 16, "S as Malenia SGD's"),),
                   note="the first S gradients to arrive, mostly from the fast workers and their class"),
    ),
    claims=(
        Claim("Minibatch SGD: tau_n (L Delta/eps + sigma^2 L Delta/(n eps^2)); Malenia SGD (Theorem A.4): tau_n L "
              "Delta/eps + ((1/n) sum_{i=1}^n tau_i) sigma^2 L Delta/(n eps^2); Lower Bound (Theorem A.2): the same",
              f"{SEED} lines 993-1003", "before", "malenia_sgd", "minibatch_sgd",
              look_at="the gap is at most tau_n / mean tau_i = 1.5 for tau_i = sqrt(i), and only in the sigma^2 term: "
                      "it needs S well above n (S = 4 n here) and both grids bracketed"),
        Claim("Rennala SGD Tyurin & R (NeurIPS '23): Data Heterogeneity x; Malenia SGD Tyurin & R (NeurIPS '23): "
              "Data Heterogeneity ~ (a check mark); The distributions D_1, ..., D_n are allowed to be different",
              f"{SEED} lines 909-912 and 919", "before", "malenia_sgd", "rennala_sgd",
              look_at="Rennala SGD's batch over-weights the fast workers' shards (weights 1/tau_i) and so their "
                      "classes; with tau_i = sqrt(i) the weights differ by sqrt(n), 4x at the small scale's n = 16, "
                      "so its lag grows with n; check that the shards hold different classes "
                      "(workers.data_split = by_label)"),
    ),
    # f - f* of the tuning criterion and the "before" claims. Small: what every method passes within the horizon
    # (200-540 s). Paper: the claim is about the sigma^2/eps term, which only matters near the noise floor: at 0.05
    # (the first paper run) Malenia and Minibatch both passed at the second snapshot, 400 s, so the check measured
    # the snapshot grid. 5e-4 is about 3x the tuned methods' final floors (1.4e-4 and 1.7e-4); on that run's files
    # every target from 3e-3 down puts Malenia first (1e-3: 3,200 s vs 3,600 s), every one from 1e-2 up does not.
    target={"paper": 5e-4, "small": 0.05},
    tuning_seeds={"small": 1, "paper": 1},  # a paper-scale run takes 4-9 min of CPU
    paper_time="about 1 h (measured: 3,246 s with --processes 2 on the 2-core machine, 30 runs, with an f* solve "
               "of shadowheart-logistic beside it; then 553 s to re-tune at the 5e-4 target, 25 runs kept)",
)
