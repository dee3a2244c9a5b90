"""A run's lines go through the logging module ("asyncopt", closing lines on "asyncopt.outcome"): the
command prints them as it always did, a Python caller silences or redirects them."""

from __future__ import annotations

import io
import logging
import os

import pytest
from click.testing import CliRunner

import asyncopt_mpi as ao
from asyncopt_mpi.cli import cli
from asyncopt_mpi.validate import load_config
from asyncopt_mpi.runtime.session import run_sim

DEMO = os.path.join(os.path.dirname(__file__), "..", "jobs", "demo.toml")
SMALL = ["workers.n=4", "stop.time=4"]


class Records(logging.Handler):
    """(logger, level, message) of every record it is given."""

    def __init__(self):
        super().__init__()
        self.seen: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((record.name, record.levelno, record.getMessage()))


@pytest.fixture
def loggers(asyncopt_loggers):
    """The asyncopt loggers as a Python program finds them (no handler, no level), restored after the test."""
    for logger in asyncopt_loggers:
        logger.handlers[:] = []
        logger.setLevel(logging.NOTSET)
        logger.propagate = True
    return asyncopt_loggers


def test_a_run_reports_its_end_and_its_error_as_log_records_not_prints(tmp_path, capsys, loggers):
    records = Records()
    loggers[0].addHandler(records)
    loggers[0].setLevel(logging.INFO)
    path = str(tmp_path / "run.h5")
    assert run_sim(load_config(DEMO, SMALL, backend="sim", output=path)) == 0
    assert run_sim(load_config(DEMO, SMALL, backend="sim", output=path)) == 2  # exists, no --overwrite
    assert records.seen[0][:2] == ("asyncopt.outcome", logging.INFO)
    assert records.seen[0][2].startswith("completed (") and records.seen[0][2].endswith(f"-> {path}")
    assert records.seen[1] == ("asyncopt", logging.ERROR, f"output path {path!r}: exists; pass --overwrite to replace "
                                                          "it, or choose another --output")
    assert capsys.readouterr() == ("", "")  # printed by no one but the handler the caller chose


def test_a_python_caller_redirects_or_silences_a_run_with_the_logging_module(tmp_path, capsys, loggers):
    lines = io.StringIO()
    loggers[0].addHandler(logging.StreamHandler(lines))
    loggers[0].propagate = False
    loggers[0].setLevel(logging.INFO)
    path = str(tmp_path / "run.h5")
    assert run_sim(load_config(DEMO, SMALL, backend="sim", output=path)) == 0
    assert run_sim(load_config(DEMO, SMALL, backend="sim", output=path)) == 2
    shown = lines.getvalue().splitlines()
    assert len(shown) == 2 and shown[0].startswith("completed (") and "exists" in shown[1]
    loggers[0].setLevel(logging.CRITICAL)
    assert run_sim(load_config(DEMO, SMALL, backend="sim", output=path)) == 2
    assert lines.getvalue().splitlines() == shown
    assert capsys.readouterr() == ("", "")


def runner() -> CliRunner:
    """stdout and stderr apart (click 8.2 keeps them apart; before, mix_stderr=False asks for it)."""
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:
        return CliRunner()


def test_the_command_prints_the_lines_it_always_did_through_its_handler(tmp_path, loggers):
    records = Records()
    loggers[1].addHandler(records)  # the command's handler sits on "asyncopt": this one still sees the closing lines
    base = ["run", DEMO, "--backend", "sim", "--set", "workers.n=4", "--set", "stop.time=4"]
    path = str(tmp_path / "run.h5")
    done = runner().invoke(cli, [*base, "--output", path, "--quiet"])
    assert done.exit_code == 0 and done.stderr == ""
    assert done.stdout.startswith("asyncopt: completed (") and done.stdout.endswith(f"-> {path}\n")
    assert len(done.stdout.splitlines()) == 1  # --quiet keeps the closing line: it says what the exit status means
    refused = runner().invoke(cli, [*base, "--output", path, "--set", "method.lr=x"])
    assert refused.exit_code == 2 and refused.stdout == ""
    assert refused.stderr == "asyncopt: error: method.lr: expected a number, got 'x'\n"
    diverged = runner().invoke(cli, [*base, "--output", str(tmp_path / "d.h5"), "--set", "method.lr=1e6"])
    assert diverged.exit_code == 1 and diverged.stdout == ""
    assert diverged.stderr.startswith("asyncopt: diverged (") and len(diverged.stderr.splitlines()) == 1
    assert [level for _, level, _ in records.seen] == [logging.INFO, logging.WARNING]


def test_a_progress_interval_that_is_no_number_is_ignored(tmp_path, monkeypatch, loggers):
    """ASYNCOPT_PROGRESS_SECONDS=abc once ended a run with 'internal error: ValueError' (fixed in 208f78d)."""
    monkeypatch.setenv("ASYNCOPT_PROGRESS_SECONDS", "abc")
    result = ao.run(DEMO, overrides=SMALL, output=tmp_path / "run.h5", quiet=False)
    assert result.attrs["status"] == "completed"
