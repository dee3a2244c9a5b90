"""`shadowheart-more-workers`: Shadowheart SGD with more and more workers, their times redrawn every round (seed 001).

The seed gives the times, tau_i^k, theta_i^k ~ Uniform(0.1, 1) for every worker i and round k (seed 001 lines
1185-1189: "Shadowheart SGD: Adding More Workers..."); the project draws them per job
(workers.compute = comm = "uniform_range", and a Shadowheart round is one job per worker). The problem, d and the
numbers of workers are those of jobs/shadowheart_more_workers.toml (the authors' quadratic, as in
shadowheart-regimes); the seed keeps neither the figure's n nor its axes.
"""

from __future__ import annotations

from .experiment import Claim, Experiment, MethodSpec, Panel, Setting
from .shadowheart_regimes import CODE, SEED

JOBS = "jobs/shadowheart_more_workers.toml"
UNIFORM = f"{SEED} line 1189 (tau_i^k, theta_i^k ~ Uniform(0.1, 1) for all i and k >= 0)"
QUOTE = ("Shadowheart SGD: Adding More Workers... tau_i^k, theta_i^k ~ Uniform(0.1, 1) for all i in {1, ..., n} "
         "and k >= 0")


def workers(paper: int, small: int) -> MethodSpec:
    """Shadowheart SGD with `paper` (`small`) workers: one line of the figure."""
    return MethodSpec("shadowheart_sgd", (0.5, 1.0, 2.0),
                      (Setting("workers.n", paper, small, f"{JOBS} (its sweep workers.n = 10, 100, 1000)"),),
                      note=f"step sizes in powers of 2 as {CODE} gamma_multiply",
                      label=f"shadowheart_sgd n={paper} (small: {small})")


# The figure's lines; a claim compares two of them by their time to the target f - f* (how much sooner more workers
# get there, the figure's point) and by their final f - f* at the same horizon
FEW, MORE, MOST = workers(10, 2), workers(100, 8), workers(1000, 32)
# At the paper scale every line ends at the floor its step size and noise set (f - f* ~ 0.006 at lr = 1 for
# n = 100 and 1000, reached by n = 100 at about 15,000 of the 20,000 s): the final values then differ by seed noise.
FLOOR = ("at the horizon both lines may sit at one noise floor (that of the step size and the quadratic's noise), "
         "where final values differ only by seed noise; the time to the target is then the figure's comparison")


EXPERIMENT = Experiment(
    name="shadowheart-more-workers",
    paper="seed 001: Shadowheart SGD (Tyurin, Pozzi, Ilin, Richtarik, arXiv 2402.04785)",
    figure_ref="Adding More Workers",
    description="quadratic, tau_i^k, theta_i^k ~ U(0.1, 1) redrawn every round: Shadowheart SGD with 10, 100, 1000 "
                "workers",
    settings=(
        # Shadowheart's own keys are accepted only once the config names the method (tune loads the base first)
        Setting("method.name", "shadowheart_sgd", "shadowheart_sgd", f"{SEED} line 1193 (the figure's one method)"),
        Setting("method.K", 1, 1, f"{SEED} line 1153 (RandK with K = 1 in Shadowheart SGD)"),
        Setting("method.sigma2_over_eps", 1.0, 1.0, f"as shadowheart-regimes; {CODE} --shadowheart_batch_size_list"),
        Setting("problem.name", "quadratic", "quadratic", f"{JOBS}; {CODE} generate_task (worst-case quadratic)"),
        Setting("problem.noise", 0.01, 0.01, JOBS),
        Setting("workers.compute", "uniform_range", "uniform_range", UNIFORM),
        Setting("workers.compute_range", [0.1, 1.0], [0.1, 1.0], UNIFORM),
        Setting("workers.comm", "uniform_range", "uniform_range", UNIFORM),
        Setting("workers.comm_range", [0.1, 1.0], [0.1, 1.0], UNIFORM),
        Setting("stop.time", 20000.0, 200.0, f"{JOBS} (the seed's figure has no axis values)"),
        Setting("output.snapshot_every", 200.0, 10.0, "plot resolution (a snapshot costs an evaluation of f)"),
    ),
    panels=(Panel("uniform times", (Setting("problem.dim", 1000, 100, f"{JOBS} (the seed gives no d)"),)),),
    methods=(FEW, MORE, MOST),
    claims=(
        Claim(QUOTE, f"{SEED} lines 1185-1189", "before", MOST.id, MORE.id,
              look_at="t* falls with n only while the added workers' terms matter: with RandK K = 1 (omega = d - 1) "
                      "the rounds shorten roughly as d theta/n; check both grids are bracketed"),
        Claim(QUOTE, f"{SEED} lines 1185-1189", "before", MORE.id, FEW.id,
              look_at="as above, between 10 and 100 workers"),
        Claim(QUOTE, f"{SEED} lines 1185-1189", "below", MOST.id, MORE.id, look_at=FLOOR),
        Claim(QUOTE, f"{SEED} lines 1185-1189", "below", MORE.id, FEW.id, look_at=FLOOR),
    ),
    target={"paper": 1e-2, "small": 2.0},  # small: n = 8 ends near 1 and n = 2 near 15 at 200 s
    paper_time="about 1.5 h (measured with --processes 2 under a load of 8-12: 3,340 s until stopped, then 2,152 s "
               "resumed with Shadowheart's rounds in one block; 42 runs, n = 1000's 14 about 4-10 min of CPU each)",
)
