"""Output shared by the experiment benchmarks: a Markdown table and one figure in a results folder."""

from __future__ import annotations

import os


def new_figure(width: float = 5.4):
    """A (figure, axes) pair drawn off-screen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, 4.0), dpi=120)


def save(directory: str, table: str, figure, axes, xlabel: str, ylabel: str, title: str) -> None:
    """Label the axes, write table.md and figure.png to `directory`, and print the table."""
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(os.path.join(directory, "figure.png"))
    with open(os.path.join(directory, "table.md"), "w") as handle:
        handle.write(table + "\n")
    print(table)
