"""What an experiment module declares: its setting with sources, methods and grids, claims, figure, scales.

An experiment is data only; `driver.py` runs it. Every number of a setting carries where it came
from (a seed paper's file and line, or a file of the authors' public code), so REPORT.md can show it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from ..config import toml_value
from ..tune import _median_iqr as median_iqr

SCALES = ("small", "paper")
KINDS = ("before", "below", "above", "steadier")  # of a Claim


@dataclass(frozen=True)
class Setting:
    """One config key at the paper's scale and at the small (CI) scale, with the source of the paper's value."""

    key: str
    paper: object
    small: object
    source: str

    def value(self, scale: str) -> object:
        return self.paper if scale == "paper" else self.small


@dataclass(frozen=True)
class Panel:
    """One setting of the figure (e.g. one n), drawn as its own PNG."""

    label: str  # e.g. "n = 1000"; also names the panel's folder (slug)
    settings: tuple[Setting, ...] = ()

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.label.replace(" ", "")).strip("-") or "main"


@dataclass(frozen=True)
class MethodSpec:
    """A compared method, the first values of its step-size grid (tune extends them until bracketed).

    `tuned=False`: the paper fixes the value (e.g. gamma = 1/(2L)); `grid` then holds that one value,
    run as given on the reported seeds. `label` tells two variants of one method apart (e.g.
    "freya_page (permutation)"); it names the method's folder, its line in the figure and claims.
    """

    name: str
    grid: tuple[float, ...]
    settings: tuple[Setting, ...] = ()  # the method's own keys, e.g. method.batch for Rennala SGD
    note: str = ""  # where the grid comes from
    key: str = "method.lr"
    tuned: bool = True
    label: str = ""
    paper_grid: tuple[float, ...] = ()  # the first values at the paper scale, when they differ from `grid`'s

    def first_grid(self, scale: str) -> tuple[float, ...]:
        return self.paper_grid if scale == "paper" and self.paper_grid else self.grid

    @property
    def id(self) -> str:
        return self.label or self.name

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() or c in "_-" else "-" for c in self.id.replace(" ", "")).strip("-")


@dataclass(frozen=True)
class Claim:
    """A claim of the paper as a statement checked per reported seed.

    kind "before": `first` reaches the experiment's target f - f* sooner than `second` (never is later than any time).
    kind "below": `first` ends at least `factor` times below `second` in `metric` (f - f* unless named).
    kind "above": `first` ends at least `factor` times above `second` in `metric` (e.g. test_accuracy).
    kind "steadier": `metric` varies less over the final `window` for `first` than for `second` (variance
    at least `factor` times smaller), as seed 001's Table 2 compares test accuracies.
    "Ends" is the last value, or with `window` > 0 the mean over that final fraction of the run's snapshots.
    `first` and `second` are method ids (MethodSpec.id).
    """

    quote: str  # the paper's words (or its table's numbers)
    source: str  # seed file and line
    kind: str
    first: str
    second: str
    factor: float = 1.0
    look_at: str = ""  # what to check when it does not hold
    metric: str = "suboptimality"
    window: float = 0.0
    panels: tuple[str, ...] = ()  # the panels (labels) the claim is about; empty: every panel

    def applies_to(self, panel: str) -> bool:
        return not self.panels or panel in self.panels

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"claim kind {self.kind!r}: accepted: {', '.join(KINDS)}")

    def statement(self, target: float) -> str:
        if self.kind == "before":
            return f"{self.first} reaches f - f* <= {target:g} before {self.second}"
        name = "f - f*" if self.metric == "suboptimality" else self.metric
        over = f" (mean over the final {self.window:.0%} of snapshots)" if self.window else ""
        if self.kind == "steadier":
            times = f"{self.factor:g} times " if self.factor != 1 else ""
            return f"{self.first}'s {name} varies {times}less than {self.second}'s over the final {self.window:.0%}"
        factor = f"at least {self.factor:g} times " if self.factor != 1 else ""
        direction = "below" if self.kind == "below" else "above"
        return f"{self.first} ends {factor}{direction} {self.second} in {name}{over}"


@dataclass(frozen=True)
class Figure:
    """One plot per panel: `y` against `x` (plot.py's axes); the first figure of an experiment is
    figure-PANEL.png, the others figure-PANEL-Y.png."""

    x: str = "time"
    y: str = "suboptimality"
    logx: bool = False  # the y axis of f - f* is logarithmic in every plot of the project


@dataclass(frozen=True)
class Experiment:
    name: str
    paper: str  # e.g. "seed 001, Freya PAGE (Tyurin, Gruntkowska, Richtarik, NeurIPS 2024)"
    figure_ref: str  # e.g. "Figure 1"
    description: str  # one line for --list
    settings: tuple[Setting, ...]  # shared by every panel
    panels: tuple[Panel, ...]
    methods: tuple[MethodSpec, ...]
    claims: tuple[Claim, ...]
    target: dict[str, float]  # per scale: f - f* of the tuning criterion and of the "before" claims
    figures: tuple[Figure, ...] = (Figure(),)
    # per scale; small keeps CI short: one tuning seed, at most two extensions per side
    tuning_seeds: dict[str, int] = field(default_factory=lambda: {"small": 1, "paper": 3})
    extensions: dict[str, int] = field(default_factory=lambda: {"small": 2, "paper": 4})
    # paper-scale wall time on a 2-core machine as measured (for --list and REPORT.md), e.g. "50 min"
    paper_time: str = "not yet measured"
    # an experiment without runs (e.g. a table of the theory's factors): compute(scale) -> REPORT.md's text
    compute: Callable[[str], str] | None = None

    def overrides(self, panel: Panel, method: MethodSpec, scale: str) -> list[str]:
        """`--set` items of one panel and method at `scale`."""
        return [f"{s.key}={toml_value(s.value(scale))}" for s in (*self.settings, *panel.settings, *method.settings)]


# Verdict rule (REPORT.md quotes it): a claim is checked in every reported seed (the methods' runs
# with the same workers.seed are paired) and on the medians over the seeds.
RULE = ("reproduced: the statement holds on the medians over the reported seeds and in at least 80% of them; "
        "partly: it holds on the medians or in at least half of the seeds; not reproduced: otherwise.")


@dataclass
class Check:
    claim: Claim
    holds: list[bool]  # per paired seed
    on_medians: bool
    first: list[float]  # per seed: time to target (kind before) or final f - f* (kind below)
    second: list[float]

    @property
    def verdict(self) -> str:
        share = sum(self.holds) / len(self.holds) if self.holds else 0.0
        if self.on_medians and share >= 0.8:
            return "reproduced"
        if self.on_medians or share >= 0.5:
            return "partly"
        return "not reproduced"


def check(claim: Claim, first: list[float], second: list[float]) -> Check:
    """Check `claim` on per-seed values: time to target (inf: never), final value or variance (a diverged run:
    inf, or -inf for kind "above")."""
    pairs = list(zip(first, second))
    if claim.kind == "before":
        holds = [a < b for a, b in pairs]
        on_medians = _median(first) < _median(second)
    elif claim.kind == "above":
        holds = [_above(a, b, claim.factor) for a, b in pairs]
        on_medians = _above(_median(first), _median(second), claim.factor)
    else:  # below, steadier: smaller is better
        holds = [_ratio(b, a) >= claim.factor for a, b in pairs]
        on_medians = _ratio(_median(second), _median(first)) >= claim.factor
    return Check(claim, holds, on_medians, first, second)


def _above(first: float, second: float, factor: float) -> bool:
    return math.isfinite(first) and first >= factor * second  # a diverged run (-inf) is never above


def _ratio(high: float, low: float) -> float:
    if not math.isfinite(low):
        return 0.0  # the method said to end lower diverged
    if low <= 0:
        return math.inf if high > 0 else 1.0
    return high / low


def _median(values: list[float]) -> float:
    """Median where inf (never / diverged) sorts above every number."""
    return median_iqr(values)[0]
