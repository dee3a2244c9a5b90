"""Plugins from --plugin, a [plugins] table and entry points: in the simulator and over real mpiexec,
reloaded by --resume, evaluate and sweeps without being named again; failures end every rank."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import MPIEXEC, asyncopt_command, attrs, project_lines, read, run_cli, run_mpi

ROOT = Path(__file__).resolve().parents[1]
FEDBUFF = str(ROOT / "examples" / "fedbuff.py")
LEAST_SQUARES = str(ROOT / "examples" / "least_squares.py")


@pytest.fixture
def data(tmp_path) -> str:
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from least_squares import make_data
    finally:
        sys.path.pop(0)
    return make_data(str(tmp_path / "ls.npz"), samples=200, dim=10)


def _plugin_config(tmp_path, data: str, **extra: str) -> Path:
    """A config that names the example method and problem only through its [plugins] table."""
    path = tmp_path / "plugin.toml"
    lines = [
        "[plugins]", f"plugins = [{FEDBUFF!r}, {LEAST_SQUARES!r}]".replace("'", '"'),
        "[problem]", 'name = "least_squares"', f'data = "{data}"',
        "[method]", 'name = "fedbuff"', "lr = 0.05", "buffer = 3",
        "[workers]", "compute_scale = 0.002",
        # A count ends the run, so a loaded machine still makes the steps checked; the time is a backstop.
        "[stop]", "iterations = 10", "time = 60.0",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _steps_match_buffer(path, buffer: int) -> None:
    """Every FedBuff step used exactly `buffer` results, all of them accepted."""
    found = read(path, "trace/grads_used", "events/accepted")
    assert len(found["trace/grads_used"]) > 5
    assert np.all(found["trace/grads_used"] == buffer)
    assert found["events/accepted"].all()
    assert len(found["trace/grads_used"]) == len(found["events/accepted"]) // buffer


@pytest.mark.timeout(600)
def test_plugin_method_and_problem_by_flag_in_sim_then_resume_and_evaluate_without_it(tmp_path, data):
    out = tmp_path / "sim.h5"
    args = ["run", "--backend", "sim", "--plugin", FEDBUFF, "--plugin", LEAST_SQUARES, "--method", "fedbuff",
            "--set", "problem.name=least_squares", "--set", f"problem.data={data}", "--set", "workers.n=6",
            "--set", "method.buffer=4", "--set", "method.lr=0.05", "--set", "stop.time=2", "--output", str(out), "--quiet"]
    done = run_cli(args)
    assert done.returncode == 0, done.stderr
    stored = attrs(out)
    assert stored["method"] == "fedbuff" and stored["problem"] == "least_squares"
    assert list(stored["plugin_specs"]) == [FEDBUFF, LEAST_SQUARES]
    _steps_match_buffer(out, 4)
    first = read(out, "metrics/suboptimality")["metrics/suboptimality"]
    assert first[-1] < 0.1 * first[0]  # it optimises

    resumed = run_cli(["run", "--resume", str(out), "--set", "stop.time=4", "--quiet"])
    assert resumed.returncode == 0, resumed.stderr
    times = read(out, "snapshots/time")["snapshots/time"]
    assert times[-1] >= 4.0 and attrs(out)["segments"] == 2

    evaluated = run_cli(["evaluate", str(out)])
    assert evaluated.returncode == 0, evaluated.stderr
    summary = run_cli(["summary", str(out)])
    assert summary.returncode == 0 and "fedbuff" in summary.stdout


@pytest.mark.mpi
@pytest.mark.timeout(600)
def test_plugins_table_over_mpiexec_then_resume_and_evaluate_without_naming_them(tmp_path, data):
    config = _plugin_config(tmp_path, data)
    out = tmp_path / "mpi.h5"
    done = run_mpi(2, ["run", str(config), "--output", str(out), "--quiet"], timeout=180)
    assert done.returncode == 0, done.stderr
    stored = attrs(out)
    assert stored["method"] == "fedbuff" and stored["backend"] == "mpi" and stored["n_workers"] == 1
    _steps_match_buffer(out, 3)

    resumed = run_mpi(2, ["run", "--resume", str(out), "--set", "stop.iterations=20", "--quiet"], timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    assert attrs(out)["status"] == "completed" and attrs(out)["segments"] == 2
    assert read(out, "trace/iteration")["trace/iteration"][-1] == 20

    evaluated = run_cli(["evaluate", str(out)])
    assert evaluated.returncode == 0, evaluated.stderr


@pytest.mark.mpi
@pytest.mark.timeout(600)
def test_sweep_over_mpiexec_reloads_plugins_in_every_run(tmp_path, data):
    config = _plugin_config(tmp_path, data)
    folder = tmp_path / "sweep"
    done = run_cli(["sweep", str(config), "--grid", "method.buffer=2,4", "--backend", "mpi", "--ranks", "2",
                    "--out", str(folder)], timeout=300)
    assert done.returncode == 0, done.stderr
    files = sorted(folder.glob("*.h5"))
    assert len(files) == 2
    for path, buffer in zip(files, (2, 4)):
        assert attrs(path)["method"] == "fedbuff" and attrs(path)["status"] == "completed"
        _steps_match_buffer(path, buffer)


def _write(path: Path, text: str) -> str:
    path.write_text(textwrap.dedent(text))
    return str(path)


TINY_METHOD = """
    import asyncopt_mpi as ao

    @ao.register_method
    class {cls}(ao.Method):
        name = "{name}"
        description = "a test plugin"

        def start(self, server):
            for worker in range(server.n_workers):
                server.assign(worker, ao.Job(ao.JobKind.GRAD, server.version, self.batch))

        def on_result(self, server, worker, result):
            {body}
            server.publish(server.x - self.lr * result.vector, grads_used=result.n_grads, max_delay=result.delay)
            server.assign(worker, ao.Job(ao.JobKind.GRAD, server.version, self.batch))
            return True
"""


def _each_rank(n_ranks: int, args: list[str], folder: Path, timeout: float = 120) -> tuple[subprocess.CompletedProcess, list[int]]:
    """mpiexec with every rank's own exit status written to folder/rc.RANK."""
    if MPIEXEC is None:
        pytest.fail("mpiexec not found")
    inner = " ".join(f"'{part}'" for part in asyncopt_command() + args)
    script = f'{inner}; echo $? > "{folder}/rc.${{PMI_RANK:-$OMPI_COMM_WORLD_RANK}}"'  # MPICH's or Open MPI's rank
    # prterun ends the other ranks once one exits non-zero, sometimes between a rank's own exit and
    # its `echo`: here each rank's own status is under test, so that launcher policy is turned off.
    environment = {**os.environ, "PRTE_MCA_state_base_error_non_zero_exit": "0"}
    done = subprocess.run([MPIEXEC, "-n", str(n_ranks), "sh", "-c", script], capture_output=True, text=True,
                          timeout=timeout, env=environment)
    codes = [int((folder / f"rc.{rank}").read_text()) for rank in range(n_ranks)]
    return done, codes


@pytest.mark.mpi
def test_a_plugin_that_raises_on_import_ends_every_rank_with_exit_2_and_one_line(tmp_path):
    bad = _write(tmp_path / "broken_plugin.py", "raise RuntimeError('broken on purpose')\n")
    done, codes = _each_rank(2, ["run", "--plugin", bad, "--set", "stop.time=1", "--output", str(tmp_path / "x.h5")],
                             tmp_path)
    assert codes == [2, 2], done.stderr
    lines = project_lines(done.stderr)  # not the launcher's banner (prterun adds one)
    assert len(lines) == 1, done.stderr
    assert "broken_plugin.py" in lines[0] and "RuntimeError: broken on purpose" in lines[0]
    assert not (tmp_path / "x.h5").exists()

    sim = run_cli(["run", "--backend", "sim", "--plugin", bad, "--set", "workers.n=2", "--set", "stop.time=1"])
    assert sim.returncode == 2 and sim.stderr.count("\n") == 1 and "broken_plugin.py" in sim.stderr
    missing = run_cli(["summary", "--plugin", "no_such_plugin_module", str(tmp_path)])
    assert missing.returncode == 2 and "no_such_plugin_module" in missing.stderr and "Traceback" not in missing.stderr


@pytest.mark.mpi
def test_a_plugin_method_raising_in_on_result_fails_every_rank_and_names_the_method(tmp_path):
    plugin = _write(tmp_path / "faulty.py", TINY_METHOD.format(
        cls="Faulty", name="faulty_sgd", body="if server.version == 5: raise ValueError('bad gradient bookkeeping')"))
    out = tmp_path / "faulty.h5"
    done, codes = _each_rank(2, ["run", "--plugin", plugin, "--method", "faulty_sgd", "--set", "stop.time=30",
                                 "--output", str(out), "--quiet"], tmp_path)
    assert codes == [1, 1], done.stderr
    assert "method 'faulty_sgd' failed in on_result: ValueError: bad gradient bookkeeping" in done.stderr
    assert "Traceback" not in done.stderr
    stored = attrs(out)
    assert stored["status"] == "failed" and "faulty_sgd" in stored["stop_reason"]


def test_methods_lists_plugins_marked_and_a_name_clash_is_refused(tmp_path):
    plugin = _write(tmp_path / "listed.py", TINY_METHOD.format(cls="Listed", name="listed_sgd", body="pass"))
    listed = run_cli(["methods", "--plugin", plugin])
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if line.startswith("listed_sgd"))
    assert f"[plugin {plugin}]" in line
    builtin = next(line for line in listed.stdout.splitlines() if line.startswith("async_sgd"))
    assert "[" not in builtin.split()[1]
    assert "listed_sgd" not in run_cli(["methods", "--markdown", "--plugin", plugin]).stdout  # README: built-ins only
    with_problem = run_cli(["methods", "--plugin", LEAST_SQUARES]).stdout
    assert f"least_squares              [plugin {LEAST_SQUARES}]" in with_problem

    clash = _write(tmp_path / "clash.py", TINY_METHOD.format(cls="Clash", name="async_sgd", body="pass"))
    refused = run_cli(["methods", "--plugin", clash])
    assert refused.returncode == 2
    assert "'async_sgd'" in refused.stderr and "already taken" in refused.stderr and "clash.py" in refused.stderr


def _wheel(folder: Path, module_source: str) -> Path:
    """A pure-Python wheel of package `epdemo` declaring an asyncopt_mpi.methods entry point (no build backend needed)."""
    import base64
    import hashlib
    import zipfile

    files = {
        "epdemo/__init__.py": textwrap.dedent(module_source),
        "epdemo-0.0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: epdemo\nVersion: 0.0.1\n",
        "epdemo-0.0.1.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        "epdemo-0.0.1.dist-info/entry_points.txt": "[asyncopt_mpi.methods]\nep_sgd = epdemo:EntryPointSGD\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    files["epdemo-0.0.1.dist-info/RECORD"] = "\n".join(record + ["epdemo-0.0.1.dist-info/RECORD,,"]) + "\n"
    path = folder / "epdemo-0.0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


@pytest.mark.timeout(600)
def test_an_entry_point_plugin_installed_with_pip_is_found(tmp_path):
    wheel = _wheel(tmp_path, TINY_METHOD.format(cls="EntryPointSGD", name="ep_sgd", body="pass"))
    site = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    assert (site / "epdemo-0.0.1.dist-info" / "entry_points.txt").exists()
    env = {**os.environ, "PYTHONPATH": str(site)}
    listed = subprocess.run(asyncopt_command() + ["methods"], capture_output=True, text=True, env=env, timeout=120)
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if line.startswith("ep_sgd"))
    assert "[entry point ep_sgd" in line
    out = tmp_path / "ep.h5"
    ran = subprocess.run(asyncopt_command() + ["run", "--backend", "sim", "--method", "ep_sgd", "--set", "workers.n=2",
                                               "--set", "stop.time=0.5", "--output", str(out), "--quiet"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert attrs(out)["method"] == "ep_sgd"
    with h5py.File(out, "r") as handle:
        assert len(handle["trace/time"]) > 10


@pytest.mark.timeout(600)
def test_a_home_made_launcher_run_resumes_and_evaluates_without_the_launcher(tmp_path):
    """A method registered by plain Python code (no plugin option) is recorded by its file all the same."""
    _write(tmp_path / "home_methods.py", TINY_METHOD.format(cls="HomeSGD", name="home_sgd", body="pass"))
    launcher = _write(tmp_path / "launch.py", """
        import sys
        sys.path.insert(0, sys.argv.pop(1))
        import home_methods  # registers home_sgd
        from asyncopt_mpi.cli import main
        main()
    """)
    out = tmp_path / "home.h5"
    done = subprocess.run([sys.executable, launcher, str(tmp_path), "run", "--backend", "sim", "--method", "home_sgd",
                           "--set", "workers.n=3", "--set", "stop.time=1", "--output", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert list(attrs(out)["plugin_specs"]) == [str(tmp_path / "home_methods.py")]
    assert run_cli(["evaluate", str(out)]).returncode == 0
    resumed = run_cli(["run", "--resume", str(out), "--set", "stop.time=2", "--quiet"])
    assert resumed.returncode == 0, resumed.stderr
    assert read(out, "snapshots/time")["snapshots/time"][-1] >= 2.0
