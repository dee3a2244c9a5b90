"""Bounded input (issue 24, items 3, 4 and 7): no input file, nesting, placeholder or option makes a run
grow, hang or print more than one short line.

/dev/zero, a FIFO or a folder where a file is expected is refused unread (a FIFO never blocks the
open); a config over 1 MB and a trace or edge file over 16 MB are refused; TOML nests at most 32
levels; an echoed value is cut to 200 characters; output.path takes only the documented bare
placeholders; a method's check_options that raises anything is a config error (exit 2). Runs
that cross processes are real `asyncopt` commands (under `mpiexec -n 2` for MPI; else forked from
conftest's command server, tests/forked_cli.py) in a child with a timeout and an address-space
limit, so a regression fails instead of filling memory.
"""

from __future__ import annotations

import gzip
import os
import resource
import subprocess
import textwrap

import pytest

from asyncopt_mpi.validate import load_config
from asyncopt_mpi.errors import ConfigError, DataError
from asyncopt_mpi.graph import read_edges
from asyncopt_mpi.problems.data import load_dataset
from asyncopt_mpi.traces import load_trace
from conftest import COMMANDS, MPIEXEC, MPIEXEC_FLAGS, asyncopt_command, project_lines

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "jobs", "demo.toml")
SIM = ["--backend", "sim", "--quiet", "--set", "workers.n=2", "--set", "stop.time=1"]
MEMORY_LIMIT = 6 * 2**30  # what a child may map: a read of /dev/zero stops at it instead of at the OOM killer
DEEP = "a = " + "[" * 3000 + "]" * 3000 + "\n"


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def asyncopt(args: list[str], cwd, ranks: int = 0, timeout: float = 60) -> subprocess.CompletedProcess:
    """`asyncopt ARGS` (under `mpiexec -n RANKS` when ranks > 0), memory-limited; a hang fails after `timeout`."""
    if not ranks:
        done = COMMANDS.run(args, cwd=str(cwd), timeout=timeout, memory_limit=MEMORY_LIMIT)
        if done.returncode is None:
            raise subprocess.TimeoutExpired(done.args, timeout, done.stdout, done.stderr)
        return done
    return subprocess.run([MPIEXEC, *MPIEXEC_FLAGS, "-n", str(ranks)] + asyncopt_command() + args, capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, preexec_fn=_limited, stdin=subprocess.DEVNULL)


def one_line(done: subprocess.CompletedProcess, *fragments: str) -> str:
    """The single error line of a refused command; asserts exit 2, no traceback, a short line."""
    lines = project_lines(done.stderr)
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr[-2000:]
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("asyncopt: error: "), lines[:5]
    assert len(lines[0]) < 1000, len(lines[0])
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def fifo(tmp_path) -> str:
    path = str(tmp_path / "pipe")
    os.mkfifo(path)
    return path


# ---------------------------------------------------------------------------- files that are not files


@pytest.mark.timeout(120)
def test_dev_zero_and_a_fifo_as_config_are_refused_unread_in_the_simulator(tmp_path, fifo):
    one_line(asyncopt(["run", "/dev/zero", *SIM], tmp_path), "config file /dev/zero", "a device, not a regular file")
    one_line(asyncopt(["run", fifo, *SIM], tmp_path), "config file", "a FIFO")
    with pytest.raises(ConfigError, match="a folder, not a regular file"):  # the CLI's click says so first
        load_config(str(tmp_path), backend="sim")


@pytest.mark.timeout(180)
def test_a_fifo_and_dev_zero_as_problem_data_or_test_data_are_refused_unread(tmp_path, fifo):
    (tmp_path / "train.svm").write_text("1 1:0.5 2:1\n-1 1:-1\n1 2:0.25\n-1 1:0.1 2:-2\n")
    for data, test_data, fragment in [(fifo, "", "problem.data: data file"),
                                      ("/dev/zero", "", "problem.data: data file /dev/zero"),
                                      ("train.svm", fifo, "data file")]:
        done = asyncopt(["run", DEMO, *SIM, "--set", "problem.name=logistic", "--set", f"problem.data={data}",
                         "--set", f"problem.test_data={test_data}", "--output", "out.h5"], tmp_path)
        one_line(done, fragment, "not a regular file")
    assert not (tmp_path / "out.h5").exists()


def test_the_readers_refuse_a_fifo_before_reading(fifo):
    """Each reader on its own (the run's validation refuses first): a FIFO never blocks an open."""
    for fmt in ("auto", "libsvm", "npz", "h5", "idx"):
        with pytest.raises(DataError, match="FIFO"):
            load_dataset(fifo if fmt != "idx" else f"{fifo}:{fifo}", fmt)
    with pytest.raises(ConfigError, match="FIFO"):
        load_trace(fifo, 2)
    with pytest.raises(ConfigError, match="FIFO"):
        read_edges(fifo, 2)


@pytest.mark.mpi
@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", ["dev_zero", "fifo", "deep_toml"])
def test_under_mpiexec_a_hostile_config_ends_every_rank_with_one_line(tmp_path, fifo, case):
    """Rank 0 reads the config's [plugins] before the ranks agree on anything: that read must not hang or raise."""
    path = {"dev_zero": "/dev/zero", "fifo": fifo, "deep_toml": str(tmp_path / "deep.toml")}[case]
    (tmp_path / "deep.toml").write_text(DEEP)
    done = asyncopt(["run", path, "--set", "stop.time=1", "--output", "out.h5"], tmp_path, ranks=2, timeout=120)
    one_line(done, {"dev_zero": "a device", "fifo": "a FIFO", "deep_toml": "more than 32 levels deep"}[case])
    assert not (tmp_path / "out.h5").exists()


# ---------------------------------------------------------------------------- sizes and nesting


@pytest.mark.timeout(120)
def test_a_3000_deep_toml_array_is_one_line_in_the_simulator(tmp_path):
    (tmp_path / "deep.toml").write_text(DEEP)
    one_line(asyncopt(["run", "deep.toml", *SIM], tmp_path), "deep.toml", "more than 32 levels deep")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("text", [
    "a" + ".b" * 100_000 + " = 1\n",  # a dotted key: TOML's reader is quadratic in its parts
    "[" + "a." * 5000 + "b]\n",  # a table header: cheap to parse, 5000 levels deep
    "a = " + "{b = " * 2000 + "1" + "}" * 2000 + "\n",
    "[method]\nlr = " + "[" * 33 + "]" * 33 + "\n",  # parses, but deeper than 32
])
def test_deep_nesting_of_every_kind_is_refused_quickly(tmp_path, text):
    path = tmp_path / "deep.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="more than 32 levels deep") as caught:
        load_config(str(path), backend="sim")
    assert len(str(caught.value)) < 1000


def test_a_deep_set_value_is_taken_as_text_and_refused_as_a_wrong_type():
    with pytest.raises(ConfigError, match="method.lr: expected a number") as caught:
        load_config(None, ["method.lr=" + "[" * 3000 + "]" * 3000, "stop.time=1"], backend="sim")
    assert len(str(caught.value)) < 300


def test_a_config_over_1_mb_is_refused(tmp_path):
    path = tmp_path / "big.toml"
    path.write_text("[stop]\ntime = 1\n" + "# padding\n" * 110_000)
    with pytest.raises(ConfigError, match="larger than the 1 MB accepted"):
        load_config(str(path), backend="sim")


def test_trace_and_edge_files_over_16_mb_are_refused(tmp_path):
    trace, edges = tmp_path / "trace.csv", tmp_path / "edges.txt"
    with open(trace, "w") as handle:
        handle.write("0,0.5\n1,0.5\n" * 1_400_000)
    with open(edges, "w") as handle:
        handle.write("0 1 1.0\n" * 2_100_000)
    with pytest.raises(ConfigError, match="larger than the 16 MB accepted"):
        load_trace(str(trace), 2)
    with pytest.raises(ConfigError, match="larger than the 16 MB accepted"):
        read_edges(str(edges), 2)


# ---------------------------------------------------------------------------- echoed values


def test_a_20_mb_libsvm_label_gives_a_short_error_line(tmp_path):
    path = tmp_path / "label.svm.gz"
    path.write_bytes(gzip.compress(b"\0" * 20_000_000 + b" 1:1\n"))
    with pytest.raises(DataError, match="label .* is not a number") as caught:
        load_dataset(str(path))
    assert len(str(caught.value)) < 1000


@pytest.mark.parametrize("bad", [
    "method.name=" + "x" * 100_000,
    "problem.bogus" + "y" * 100_000 + "=1",
    "workers.compute_times=[" + ", ".join(['"a"'] * 20_000) + "]",
    "stop.time=" + '"' + "z" * 100_000 + '"',
    "bogus" + "s" * 100_000 + ".key=1",
])
def test_config_errors_echo_at_most_200_characters_of_a_value(bad):
    with pytest.raises(ConfigError) as caught:
        load_config(None, [bad], backend="sim")
    assert len(str(caught.value)) < 1000 and "..." in str(caught.value)


def test_trace_and_edge_lines_are_echoed_short(tmp_path):
    trace, edges = tmp_path / "trace.csv", tmp_path / "edges.txt"
    trace.write_text("0,0.5\n" + "q" * 100_000 + ",1\n")
    edges.write_text("0 1\n0 " + "9" * 100_000 + "\n")
    for call in (lambda: load_trace(str(trace), 1), lambda: read_edges(str(edges), 2)):
        with pytest.raises((ConfigError, DataError)) as caught:
            call()
        assert len(str(caught.value)) < 1000


# ---------------------------------------------------------------------------- output.path placeholders


@pytest.mark.timeout(120)
def test_a_format_spec_placeholder_is_refused_before_it_builds_a_2_gb_name(tmp_path):
    done = asyncopt(["run", DEMO, *SIM, "--set", 'output.path="{workers:>2000000000}"'], tmp_path)
    one_line(done, "output.path", "{workers:>2000000000}")


def test_output_path_takes_only_bare_documented_placeholders(tmp_path):
    for path in ["r/{method.__class__}.h5", "r/{method[0]}.h5", "r/{seed!r}.h5", "r/{seed:05d}.h5", "r/{}.h5",
                 "r/{bogus}.h5", "r/{method}}.h5", "r/{method.h5"]:
        with pytest.raises(ConfigError, match="output.path") as caught:
            load_config(None, ["stop.time=1", f"output.path={path}"], backend="sim")
        assert "accepted placeholders: {method}, {problem}, {backend}, {workers}, {seed}" in str(caught.value)
    config = load_config(None, ["stop.time=1", "workers.n=3", "workers.seed=7",
                                "output.path=r/{method}-{problem}-{backend}-{workers}-{seed}-{array_task}-{{x}}.h5"],
                         backend="sim")
    assert config.output_path() == "r/async_sgd-quadratic-sim-3-7-0-{x}.h5"
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------------- item 7: values


@pytest.mark.parametrize("item, fragment", [
    ("workers.seed=-1", "workers.seed: must be >= 0"),
    ("problem.seed=-1", "problem.seed: must be >= 0"),
    ("method.lr=inf", "method.lr: must be a finite number > 0"),
    ("method.lr=-inf", "method.lr: must be a finite number > 0"),
    ("method.lr=nan", "method.lr: nan is not accepted"),
    ("stop.target=nan", "stop.target: nan is not accepted"),
    ("workers.compute_times=[0.1, nan]", "workers.compute_times: nan is not accepted"),
    ("method.L=nan", "method.L: nan is not accepted"),
])
def test_values_no_run_can_use_are_config_errors(item, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[")):
        load_config(None, ["stop.time=1", "workers.n=2", item], backend="sim")


def test_stop_counts_of_0_are_refused_and_stop_time_0_is_the_run_without_updates():
    """A count is checked after each update, so 0 made one update; stop.time = 0 makes none."""
    for key in ("iterations", "gradients"):
        with pytest.raises(ConfigError, match=f"stop.{key}: must be >= 1"):
            load_config(None, [f"stop.{key}=0", "workers.n=2"], backend="sim")
    assert load_config(None, ["stop.time=0", "workers.n=2"], backend="sim").stop.time == 0


# ---------------------------------------------------------------------------- item 4: check_options


PLUGIN = textwrap.dedent('''
    import asyncopt_mpi as ao

    @ao.register_method
    class Picky(ao.Method):
        name = "picky"
        params = {"width": 2}

        @classmethod
        def check_options(cls, options):
            raise {error}

        def start(self, server):
            pass

        def on_result(self, server, worker, result):
            return True
''')


@pytest.mark.timeout(180)
@pytest.mark.parametrize("error", ["ValueError('width is odd')", "SystemExit(7)"])
def test_a_check_options_that_raises_anything_is_a_config_error_in_the_simulator(tmp_path, error):
    (tmp_path / "picky.py").write_text(PLUGIN.replace("{error}", error))
    done = asyncopt(["run", DEMO, *SIM, "--plugin", "picky.py", "--method", "picky", "--set", "method.width=3",
                     "--output", "out.h5"], tmp_path)
    line = one_line(done, "method 'picky'", "method.width = 3", "check_options raised")
    assert error.split("(")[0] in line
    assert not (tmp_path / "out.h5").exists()


@pytest.mark.mpi
@pytest.mark.timeout(300)
def test_a_check_options_that_raises_is_a_config_error_on_every_rank_under_mpiexec(tmp_path):
    (tmp_path / "picky.py").write_text(PLUGIN.replace("{error}", "ValueError('width is odd')"))
    done = asyncopt(["run", DEMO, "--plugin", "picky.py", "--method", "picky", "--set", "stop.time=1",
                     "--output", "out.h5"], tmp_path, ranks=2, timeout=120)
    one_line(done, "method 'picky'", "method.width = 2", "ValueError: width is odd")
    assert not (tmp_path / "out.h5").exists()
