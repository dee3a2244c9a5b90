"""Time-complexity formulas of the papers, up to constants, one module per paper family; `asyncopt theory`.

Setting (Tyurin & Richtarik, "Optimal time complexities of parallel stochastic optimization
methods under a fixed computation model", NeurIPS 2023, Table 1): n workers, worker i needs
tau_i seconds per stochastic gradient (sorted: tau_(1) <= ... <= tau_(n)), f is L-smooth,
Delta = f(x0) - f*, sigma^2 bounds the variance of a stochastic gradient, and the target is
E||grad f(x)||^2 <= eps (nonconvex). Every formula is the paper's up to a constant factor,
so a value is "seconds up to a universal constant", good for comparing methods and worker
pools, not for predicting a run's wall time exactly.

Conventions shared by all formulas:
- tau_i = inf is a worker that never answers; 1/inf = 0 contributes nothing to a sum of
  speeds. A formula that waits for every worker (minibatch, Malenia) is then inf; Rennala
  and the lower bound never pick such a worker; Async SGD keeps its published formula, a
  harmonic mean over all n workers in which the dead worker adds 0 speed but still counts in n.
- tau_i = 0 (an instant worker) is accepted and gives time 0 where it is used.
- 0 * inf is taken as 0: with L * Delta = 0 (x0 already optimal) every time is 0.

The families, one module each:
- rennala: Minibatch, Asynchronous, Rennala, Hero and Malenia SGD and the lower bound (NeurIPS 2023, Table 1);
- shadowheart: communication (Tyurin, Pozzi, Ilin & Richtarik, "Shadowheart SGD", arXiv 2402.04785):
  QSGD, Shadowheart SGD, its equilibrium time t* and round plan, the communication lower bounds;
- freya: finite sums (Tyurin, Gruntkowska & Richtarik, "Freya PAGE", NeurIPS 2024): Freya, Hero and
  Soviet PAGE, Hero and Soviet GD, the lower bound;
- graph: workers on a graph (Tyurin & Richtarik, NeurIPS 2024, arXiv 2405.16218): Minibatch, Amelie
  and Fragile SGD and the lower bounds;
- asgrad: asynchronous SGD's published rates (AsGrad, AISTATS 2024; Koloskova, Stich & Jaggi, NeurIPS 2022);
- convex: the convex regime (NeurIPS 2023, Appendix B);
- base: the input checks they share; table: the rows (`Inputs`, `Formula`, FORMULAS,
  CONDITIONAL_FORMULAS; how to add a method); report: the table for a run config, as text or JSON.

Every formula, the tables and `theory_table` are re-exported here. The modules need numpy only:
scipy.optimize is imported where an equilibrium needs a root solve, scipy.sparse (through
asyncopt_mpi.graph) where a graph formula needs t*.
"""

from .asgrad import ASGRAD, KOLOSKOVA, asgrad_time, koloskova_time  # noqa: F401
from .convex import (  # noqa: F401
    CONVEX,
    accelerated_rennala_sgd_time,
    convex_async_sgd_time,
    convex_lower_bound_time,
    convex_minibatch_sgd_time,
    deterministic_steps,
    woodworth_lower_bound_time,
)
from .freya import (  # noqa: F401
    FREYA,
    freya_lower_bound_time,
    freya_page_time,
    freya_profile,
    hero_gd_time,
    hero_page_time,
    soviet_gd_time,
    soviet_page_time,
)
from .graph import amelie_sgd_time, decentralized_minibatch_time, fragile_sgd_time, graph_lower_bound_time  # noqa: F401
from .rennala import (  # noqa: F401
    TABLE1,
    async_sgd_time,
    hero_sgd_time,
    lower_bound_time,
    malenia_sgd_time,
    minibatch_sgd_time,
    rennala_batch,
    rennala_optimal_m,
    rennala_sgd_time,
)
from .report import (  # noqa: F401
    DEFAULT_EPS,
    SIGMA2_SAMPLES,
    estimate_sigma2,
    format_table,
    heterogeneity_at,
    table_json,
    theory_table,
)
from .shadowheart import (  # noqa: F401
    SHADOWHEART,
    equilibrium_time,
    equilibrium_time_equal,
    minibatch_sgd_comm_time,
    qsgd_time,
    sgd_comm_lower_bound,
    shadowheart_lower_bound_time,
    shadowheart_plan,
    shadowheart_time,
)
from .table import CONDITIONAL_FORMULAS, FORMULAS, Formula, Inputs  # noqa: F401
