"""`asyncopt reproduce`: the seed papers' experiments, by name; each module declares one (see experiment.py)."""

from __future__ import annotations

import importlib

from ..errors import UserError
from ..results import shown
from .experiment import Experiment

# name -> module under asyncopt_mpi.reproduce; imported only when the experiment is asked for or listed
EXPERIMENTS = {
    "freya-fig1": "freya_fig1",
    "freya-fig2": "freya_fig2",
    "rennala": "rennala",
    "malenia": "malenia",
    "shadowheart-regimes": "shadowheart_regimes",
    "shadowheart-more-workers": "shadowheart_more_workers",
    "shadowheart-logistic": "shadowheart_logistic",
    "shadowheart-table1": "shadowheart_table1",
    "asgrad": "asgrad",
    "fragile": "fragile",
    "amelie": "amelie",
    "decentralized": "decentralized",
    "sfw-speedup": "sfw_speedup",
    "sfw-pnn": "sfw_pnn",
}


def get(name: str) -> Experiment:
    """The experiment called `name` (UserError naming the known ones otherwise)."""
    if name not in EXPERIMENTS:
        raise UserError(f"reproduce: no experiment {shown(name)!r}; known: {', '.join(EXPERIMENTS)} "
                        "(asyncopt reproduce --list)")
    return importlib.import_module(f"{__name__}.{EXPERIMENTS[name]}").EXPERIMENT


def listing() -> list[str]:
    """One line per experiment: name, seed paper, figure, description, paper-scale wall time."""
    return [f"{e.name}  {e.paper}  {e.figure_ref}: {e.description} (--scale paper: {e.paper_time})"
            for e in map(get, EXPERIMENTS)]
