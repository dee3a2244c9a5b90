"""The progress line: how much of a bounded run is done and about how long it has left, and f - f*
(not the loss, which is negative when f* < 0) when f* is known."""

from __future__ import annotations

import re

import asyncopt_mpi as ao

RUN = {"problem.name": "quadratic", "problem.dim": 10, "workers.n": 4, "method.name": "async_sgd",
       "method.lr": 0.1, "problem.noise": 0.1, "output.snapshot_every": 1}


def progress_lines(tmp_path, capsys, monkeypatch, **stop) -> list[str]:
    monkeypatch.setenv("ASYNCOPT_PROGRESS_SECONDS", "0.01")  # a line at every look (every 20 ms of the run)
    ao.run({}, overrides={**RUN, **stop}, output=tmp_path / "run.h5", quiet=False)
    return [line for line in capsys.readouterr().err.splitlines() if "updates" in line and "gradients" in line]


def test_a_run_bounded_by_gradients_says_how_much_is_done_and_shows_f_minus_f_star(tmp_path, capsys, monkeypatch):
    lines = progress_lines(tmp_path, capsys, monkeypatch, **{"stop.gradients": 10000})
    assert lines, "no progress line"
    shares = []
    for line in lines:
        found = re.search(r"virtual s, (\d+)% of stop\.gradients done", line)
        assert found, line
        shares.append(int(found.group(1)))
        assert re.search(r", f - f\* -?\d", line) and "loss" not in line, line  # quadratic's f* < 0
    assert shares == sorted(shares) and shares[-1] <= 100
    # From the second look on, the pace so far gives the time left (wall and virtual seconds).
    assert any(re.search(r"done, (under 1 s|about [\d.]+ (s|min|h)) left \([\d.e+]+ virtual s\)", line)
               for line in lines[1:]), lines


def test_a_run_bounded_by_time_shows_the_limit(tmp_path, capsys, monkeypatch):
    lines = progress_lines(tmp_path, capsys, monkeypatch, **{"stop.time": 20})
    assert lines, "no progress line"
    assert all(re.match(r"asyncopt: [\d.]+ of 20 virtual s, \d+% of stop\.time done", line) for line in lines), lines


def test_a_long_set_up_phase_logs_after_gaps_that_double(caplog, monkeypatch):
    """One phase that lasts (an f* solve of an hour) is a few lines, not one per interval: each gap doubles."""
    import logging
    import time

    from asyncopt_mpi.progress import SetupProgress

    monkeypatch.setenv("ASYNCOPT_PROGRESS_SECONDS", "0.05")
    with caplog.at_level(logging.INFO, logger="asyncopt"):
        progress = SetupProgress("setting up")
        progress.phase("f* (reference optimum)")
        time.sleep(1.6)  # lines due at 0.05, 0.1, 0.2, 0.4, 0.8, 1.6 s (a late thread only makes fewer)
        progress.close()
    lines = [record.getMessage() for record in caplog.records if "so far" in record.getMessage()]
    assert 1 <= len(lines) <= 7, lines  # one per interval would be about 32
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="asyncopt"):
        progress = SetupProgress("setting up")  # a new phase is logged at once (past the threshold), not after a gap
        progress.phase("one")
        time.sleep(0.3)
        progress.phase("two")
        time.sleep(0.3)
        progress.close()
    assert any("two" in record.getMessage() for record in caplog.records), caplog.text
