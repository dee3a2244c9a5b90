"""`freya-fig2`: Freya PAGE, Figure 2 and Table 2 (seed 001): MNIST logistic regression, tau_i = sqrt(i), n = 100, 10^4.

The seed keeps Figure 2's caption (seed 001 line 1370) and Table 2 (lines 1374-1380: mean and variance of
the test accuracy over the final 100K s of Figure 2b). Seed 000 line 132 describes the figure: f - f*
against time for n = 100 and n = 10,000, Freya PAGE against Rennala SGD, Async SGD and Soviet PAGE. The
problem is the authors' public code (github k3nfalt/optimal-decentralized-optimization,
code/distributed_optimization_library/, "CODE" below): experiments/asynchronous/config_async.py task
libsvm with dataset_name mnist (stochastic_logistic_regression, homogeneous: every worker holds all
rows), prepare_libsvm in experiments/experiments.py, MNISTDataset in dataset.py (mnist_train.csv and
mnist_test.csv, pixels / 255), LogisticRegressionFunction in function.py (softmax cross-entropy over 10
classes, no l2; accuracy = argmax of the softmax on the test rows), as jobs/freya_fig2_mnist.toml holds it.

Small scale: CI has no MNIST, so it is the built-in generator (problem.data = ""): 10-class logistic
regression on seeded synthetic rows, half held out as the test set (problem.test_fraction). A
generator needs no file, no download and no placeholder the test must fill; `problem.scale =
"standard"` puts its features on a scale where the step sizes of MNIST's grids work, so one grid
serves both scales.

Our accuracy level against Table 2's 92.x%: README's runs (0.90-0.91) used the first 10,000 rows.
Those rows are linearly separable by the 7,840-parameter model (f* = 6.5e-10 by L-BFGS, training
accuracy 1.0 at the minimiser); along L-BFGS the test accuracy peaks near 0.90 (30 iterations) and
falls to 0.865 at the minimiser. On all 60,000 rows the data is not separable (training accuracy
0.93-0.94) and the test accuracy is 0.922-0.925 from 50 L-BFGS iterations on, Table 2's level. The cause
is the data size, not the accuracy definition (ours is the code's: argmax over 10 classes on the 10,000
t10k rows, pixels / 255, no bias); the horizon and step size only decide where on the 10,000-row curve
a run stops. The paper scale uses all 60,000 rows.
"""

from __future__ import annotations

from .experiment import Claim, Experiment, Figure, MethodSpec, Panel, Setting

SEED = "seed 001"
CODE = "authors' code"
TABLE2 = f"{SEED} lines 1374-1380 (Table 2, final 100K s of Figure 2b)"
FIGURE = "seed 000 line 132 (the seed's description of Figure 2)"
MNIST = "{data}/mnist/train-images-idx3-ubyte"
MNIST_TEST = "{data}/mnist/t10k-images-idx3-ubyte"
PAPER_HORIZON = 500_000.0
WINDOW = 100_000.0 / PAPER_HORIZON  # Table 2's final 100K s as a share of the horizon
S_PAPER, S_SMALL = 245, 18  # ceil(sqrt(m)): m = 60,000 MNIST rows; small: 300 training rows

ACCURACY_LOOK_AT = ("Table 2's gaps are 0.06 to 0.35 points, within the seed-to-seed spread of one method: check "
                    "the interquartile ranges before the medians; the numbers are Figure 2b's (n = 10,000), at "
                    "n = 100 the claim is ours. Accuracy against f: on the first 10,000 rows (README's 0.90-0.91) "
                    "the data is separable and the test accuracy falls as f - f* does (0.90 to 0.865 along L-BFGS), "
                    "so a better-tuned method can end less accurate; on all 60,000 rows it is 0.922-0.925 (Table 2's "
                    "level) from 50 L-BFGS iterations on: the data size, not the definition")
VARIANCE_LOOK_AT = ("variances of 1e-7 are a few test rows changing class (one row is 1e-4 of 10,000); check the "
                    "window holds enough snapshots (output.snapshot_every) and whether the winner's step size is "
                    "smaller (tuning picks the fastest to the target, not the steadiest)")
F_LOOK_AT = ("the seed's description, not the authors' words; Freya and Soviet PAGE share the full-gradient cost "
             "(m / sum 1/tau_i s each), so early on the SGD methods lead (README: ~4,500 s at n = 100 on 10,000 "
             "rows); check the horizon passes their noise floors and that every grid is bracketed")

# Table 2 gives the final window of Figure 2b: n = 10,000 (seed 000's order of the figure's panels)
TABLE2_PANEL = ("n = 10000",)

EXPERIMENT = Experiment(
    name="freya-fig2",
    paper="seed 001: Freya PAGE (Tyurin, Gruntkowska, Richtarik, NeurIPS 2024)",
    figure_ref="Figure 2 and Table 2",
    description="logistic regression on MNIST (small: synthetic), tau_i = sqrt(i): Freya PAGE vs Soviet PAGE, "
                "Rennala SGD, Async SGD; f - f* and test accuracy against time, Table 2's final-window accuracy",
    settings=(
        Setting("problem.name", "logistic", "logistic", f"{SEED} line 1370 (caption: logistic regression); {CODE} "
                "config_async.py function stochastic_logistic_regression"),
        Setting("problem.data", MNIST, "", f"{SEED} line 1370 (MNIST); {CODE} MNISTDataset (`asyncopt data fetch "
                "mnist`); small: the built-in synthetic generator, no download"),
        Setting("problem.test_data", MNIST_TEST, "", f"{TABLE2}: accuracy on the MNIST test set; {CODE} "
                "MNISTDataset(train=False), 10,000 rows; small: none (test_fraction)"),
        Setting("problem.test_fraction", 0.0, 0.5, "paper: the test file; small: half the synthetic rows held out"),
        Setting("problem.classes", 10, 10, f"{CODE} number_of_classes of the labels (10 digits)"),
        Setting("problem.samples", 60000, 600, f"{CODE} prepare_libsvm: every training row (60,000); small: 600 "
                "synthetic rows, 300 trained on"),
        Setting("problem.dim", 784, 8, "paper: 784 pixels as the data file has them (x 10 classes, no bias: the "
                "code's --concat_ones_to_features is off by default); small: 8 synthetic features"),
        Setting("problem.scale", "none", "standard", f"{CODE} MNISTDataset: pixels / 255 (as our IDX reader); "
                "small: features scaled so MNIST's step sizes fit"),
        Setting("workers.compute", "sqrt", "sqrt", f"{SEED} line 855 (tau_i = sqrt(i)); {CODE} delays == 'sqrt'"),
        Setting("workers.compute_scale", 1.0, 1.0, f"{SEED} line 855 (seconds)"),
        Setting("stop.time", PAPER_HORIZON, 1000.0, f"{TABLE2} averages the final 100K s, so the horizon exceeds "
                "it; the seed keeps no axis values of Figure 2: 500K s is ours and makes that window the final 20%"),
        Setting("output.snapshot_every", 1000.0, 40.0, "100 snapshots in Table 2's window (a snapshot evaluates f "
                "and the test accuracy)"),
    ),
    panels=(
        Panel("n = 100", (Setting("workers.n", 100, 8, f"{FIGURE}; jobs/freya_fig2_mnist.toml; small: n < "
                                  "sqrt(m) as 100 < sqrt(60,000)"),)),
        Panel("n = 10000", (Setting("workers.n", 10000, 32, f"{FIGURE}; Figure 2b, Table 2; jobs/freya_fig2_mnist_"
                                    "n10000.toml; small: n > sqrt(m) as 10,000 > sqrt(60,000)"),)),
    ),
    methods=(
        MethodSpec("freya_page", (1.0, 2.0, 4.0), note="S = ceil(sqrt(m)), p = S/(m+S) (seed 001 Table 1, line "
                   "1287); README's MNIST run took 0.5"),
        MethodSpec("soviet_page", (1.0, 2.0, 4.0), note="every step split over all n workers (seed 001 line 1283)"),
        MethodSpec("rennala_sgd", (0.5, 1.0, 2.0),
                   (Setting("method.batch", S_PAPER, S_SMALL, "S = ceil(sqrt(m)), Freya PAGE's batch (the code's "
                            "--rennala_batch_size_list is a free list)"),),
                   note="README's MNIST run took 0.5"),
        MethodSpec("async_sgd", (0.03, 0.06, 0.12), note=f"powers of 2 as {CODE} gamma_multiply; README's MNIST "
                   "run took 0.01 (0.05 was worse)"),
    ),
    claims=(
        Claim("Table 2, Accuracy: Freya PAGE 92.66; Asynchronous SGD 92.60", TABLE2, "above", "freya_page",
              "async_sgd", metric="test_accuracy", window=WINDOW, look_at=ACCURACY_LOOK_AT, panels=TABLE2_PANEL),
        Claim("Table 2, Accuracy: Freya PAGE 92.66; Soviet PAGE 92.31", TABLE2, "above", "freya_page", "soviet_page",
              metric="test_accuracy", window=WINDOW, look_at=ACCURACY_LOOK_AT, panels=TABLE2_PANEL),
        Claim("Table 2, Accuracy: Freya PAGE 92.66; Rennala SGD 92.37", TABLE2, "above", "freya_page", "rennala_sgd",
              metric="test_accuracy", window=WINDOW, look_at=ACCURACY_LOOK_AT, panels=TABLE2_PANEL),
        Claim("Table 2, Variance of Accuracy: Freya PAGE 1.01e-07; Soviet PAGE 1.62e-07", TABLE2, "steadier",
              "freya_page", "soviet_page", metric="test_accuracy", window=WINDOW, panels=TABLE2_PANEL,
              look_at="the paper's gap is 1.6x between two variance-reduced methods near f*; a window where either "
                      "is still descending measures its trend (the small scale's 1000 s ends at f - f* ~0.03 and "
                      "~0.1); " + VARIANCE_LOOK_AT),
        Claim("Table 2, Variance of Accuracy: Soviet PAGE 1.62e-07; Asynchronous SGD 5.85e-07", TABLE2, "steadier",
              "soviet_page", "async_sgd", metric="test_accuracy", window=WINDOW, panels=TABLE2_PANEL,
              look_at="Soviet PAGE waits for tau_n at every step: with n > sqrt(m) and a short horizon it is still "
                      "far from f* and its accuracy moves through the window (check its f - f* and that its step "
                      "size is bracketed); " + VARIANCE_LOOK_AT),
        Claim("Table 2, Variance of Accuracy: Asynchronous SGD 5.85e-07; Rennala SGD 3.12e-06", TABLE2, "steadier",
              "async_sgd", "rennala_sgd", metric="test_accuracy", window=WINDOW, panels=TABLE2_PANEL,
              look_at="both have a noise floor set by the step size (and Rennala's batch): the order follows the "
                      "tuned step sizes; " + VARIANCE_LOOK_AT),
        Claim("It demonstrates that Freya PAGE achieves better convergence and lower function suboptimality, "
              "especially as the number of workers increases", FIGURE, "below", "freya_page", "async_sgd",
              window=WINDOW, look_at=F_LOOK_AT),
        Claim("It demonstrates that Freya PAGE achieves better convergence and lower function suboptimality, "
              "especially as the number of workers increases", FIGURE, "below", "freya_page", "rennala_sgd",
              window=WINDOW, look_at=F_LOOK_AT),
        Claim("It demonstrates that Freya PAGE achieves better convergence and lower function suboptimality, "
              "especially as the number of workers increases", FIGURE, "below", "freya_page", "soviet_page",
              window=WINDOW, look_at=F_LOOK_AT),
    ),
    figures=(Figure(), Figure(y="test_accuracy")),
    # f - f* of the tuning criterion: small, what every method passes within its horizon; paper, ours (the seed
    # gives no level)
    target={"paper": 1e-2, "small": 5e-2},
    tuning_seeds={"small": 1, "paper": 1},  # three would triple the tuning runs, the most of a paper run's days
    paper_time="about 1.2 days (estimated, not run: about 72 runs of 500K virtual s with one tuning seed, about "
               "57 CPU-h / 2 processes; the n = 100 panel about 2.5 h, the n = 10,000 panel about 26 h. Simulator "
               "CPU per gradient on MNIST, "
               "measured on 1/125 (n = 100) and 1/1250 (n = 10,000) of the horizon, one run each on the loaded 2-core "
               "machine: async_sgd 74 / 96 us, rennala_sgd 47 / 19 us, freya_page 88 / 81 us, soviet_page 4 / 18 us "
               "(at 444d8d8, n = 100: 198, 139, 142 us); a run computes 9.3M gradients at n = 100 (about 10 min) and "
               "99M at n = 10,000 (up to 2.6 h for async_sgd and freya_page), plus about 0.2 s per snapshot (500 a "
               "run); f* is solved once by L-BFGS on the 60,000 rows (up to 53 min) and then read from the f* cache)",
)
