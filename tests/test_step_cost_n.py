"""freya_sgd's and minibatch_page's steps cost the same work per event at any n, and change no number.

A step of either method touches few workers' jobs (S results) while n workers exist: starting
and cancelling freya_sgd's group of n jobs is array work, and minibatch_page hands out its S
parts without cutting n of them. The work per event is counted as Python calls (deterministic,
unlike time) between two runs of different lengths, so the set-up (n workers made once) cancels
out. The files must be those of the code before this work, bit for bit: REFERENCE holds digests of
every dataset of runs made with that code (regenerate with `python tests/test_step_cost_n.py`).
"""

from __future__ import annotations

import hashlib
import sys

import pytest

from same_files import datasets, simulate

FINITE_SUM = ["problem.dim=20", "problem.samples=100", "problem.lam=2.0", "problem.mu=1e-3", "workers.n=16",
              "output.snapshot_every=5", "stop.time=12", "method.lr=0.2"]
CASES = {  # one seed per method and timing model: other seeds take the same paths
    f"{method} {compute} seed 0": (method, FINITE_SUM + [f"workers.compute={compute}", "workers.seed=0",
                                                        "problem.seed=0"])
    for method in ("freya_sgd", "minibatch_page") for compute in ("sqrt", "exponential")
}
# sha256 of every dataset (name, dtype, bytes) and the events recorded, made at commit b887210.
REFERENCE = {
    'freya_sgd exponential seed 0': ('a667d95d030094bcd8771cff128412df', 8035),
    'freya_sgd sqrt seed 0': ('acf5893829eae3472666e8bb060e087f', 4240),
    'minibatch_page exponential seed 0': ('04b854437abda37baecfdd9b3c6b96d7', 837),
    'minibatch_page sqrt seed 0': ('cc562fe7fbc1bbdcbd6de897eaa0be4f', 1354),
}


def digest(path) -> tuple[str, int]:
    found = datasets(path)
    hashed = hashlib.sha256()
    for name in sorted(found):
        hashed.update(f"{name}:{found[name].dtype}:{found[name].shape}".encode())
        hashed.update(found[name].tobytes())
    return hashed.hexdigest()[:32], len(found["events/time"])


@pytest.mark.parametrize("case", sorted(CASES))
def test_files_are_those_of_the_code_before_bit_for_bit(tmp_path, case):
    method, overrides = CASES[case]
    assert simulate(tmp_path / "run.h5", method, overrides) == 0
    found, events = digest(tmp_path / "run.h5")
    assert events == REFERENCE[case][1]
    assert found == REFERENCE[case][0], f"{case}: a dataset differs from the code before"


def python_calls(path, method: str, overrides: list[str]) -> tuple[int, int]:
    """Python function calls (generator steps included) of one simulator run, and its events."""
    calls = 0

    def count(frame, event, arg):
        nonlocal calls
        calls += event == "call"

    sys.setprofile(count)
    try:
        code = simulate(path, method, overrides)
    finally:
        sys.setprofile(None)
    assert code == 0
    return calls, len(datasets(path)["events/time"])


def calls_per_event(folder, method: str, n: int) -> float:
    """Python calls per event once the run is set up: two runs of different lengths, their difference (after a
    first run that pays for the imports and caches)."""
    overrides = ["problem.dim=10", "problem.samples=400", "problem.lam=2.0", f"workers.n={n}", "workers.compute=sqrt",
                 "output.snapshot_every=1e9", "method.lr=0.2"]  # S = ceil(sqrt(400)) = 20 < n
    runs = {name: python_calls(folder / f"{method}-{n}-{name}.h5", method, overrides + [f"stop.gradients={grads}"])
            for name, grads in (("first", 1000), ("short", 1000), ("long", 3000))}
    (short, short_events), (long, long_events) = runs["short"], runs["long"]
    return (long - short) / (long_events - short_events)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("method", ["freya_sgd", "minibatch_page"])
def test_work_per_event_does_not_grow_with_n(tmp_path, method):
    few, many = calls_per_event(tmp_path, method, 50), calls_per_event(tmp_path, method, 2000)
    assert many <= 1.2 * few, f"{method}: {many:.0f} Python calls per event at n = 2000, {few:.0f} at n = 50"


if __name__ == "__main__":  # print REFERENCE from the code on the path (run once with the code before)
    import pathlib
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        for index, case in enumerate(sorted(CASES)):
            path = pathlib.Path(scratch) / f"{index}.h5"
            simulate(path, *CASES[case])
            print(f"    {case!r}: {digest(path)},")
