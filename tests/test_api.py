"""The public Python API (asyncopt_mpi.run/load/load_config/register_*): in-process runs return what
the file holds, errors are exceptions (never sys.exit), pandas stays optional."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import asyncopt_mpi as ao
from asyncopt_mpi.api import PandasMissingError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
QUICK = {
    "problem": {"name": "quadratic", "dim": 10, "noise": 0.01},
    "method": {"name": "async_sgd", "lr": 0.1},
    "workers": {"n": 4},
    "stop": {"time": 1.0},
}


def _config(tmp_path, name: str = "run", **sections) -> dict:
    config = {section: dict(values) for section, values in QUICK.items()}
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    config["output"] = {"path": str(tmp_path / f"{name}.h5")}
    return config


def test_the_public_names_are_exported():
    for name in ("Method", "Problem", "Job", "JobKind", "Result", "Server", "StepAndRestart", "VectorSum",
                 "register_method", "register_problem", "load_config", "run", "load", "RunResult", "ConfigError",
                 "DataError", "__version__"):
        assert hasattr(ao, name), name
    assert "Example" in ao.__doc__ or "::" in ao.__doc__


def test_run_returns_a_result_whose_arrays_match_the_file(tmp_path):
    result = ao.run(_config(tmp_path))
    assert isinstance(result, ao.RunResult) and result.status == "completed" and result.method == "async_sgd"
    with h5py.File(result.path, "r") as handle:
        for group in ("metrics", "trace", "events", "workers"):
            assert set(result[group]) == set(handle[group])
            for column, values in handle[group].items():
                np.testing.assert_array_equal(result[group][column], values[()])
        np.testing.assert_array_equal(result.snapshots["x"], handle["snapshots/x"][()])
        assert result.problem["f_star"] == handle["problem"].attrs["f_star"]
    assert len(result.metrics["suboptimality"]) >= 2
    assert result.metrics["suboptimality"][-1] < result.metrics["suboptimality"][0]


def test_errors_are_exceptions_not_exits(tmp_path):
    with pytest.raises(ao.ConfigError, match="method.lr"):
        ao.run(_config(tmp_path, method={"lr": -1.0}))
    with pytest.raises(ao.ConfigError, match="unknown key"):
        ao.load_config(_config(tmp_path, workers={"speed": 3}))
    with pytest.raises(ao.ConfigError, match="must be a section"):
        ao.load_config({"method": "async_sgd"})
    with pytest.raises(ao.DataError, match="not found"):
        ao.load(tmp_path / "missing.h5")
    with pytest.raises(ao.ConfigError, match="problem.data"):
        ao.run(_config(tmp_path, problem={"name": "logistic", "data": str(tmp_path / "none.svm")}))


def test_load_config_takes_a_path_a_dict_or_a_config_with_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[method]\nname = "rennala_sgd"\nlr = 0.2\n[workers]\nn = 3\n[stop]\ntime = 1.0\n')
    from_path = ao.load_config(path, {"method.batch": 4})
    assert from_path.method.name == "rennala_sgd" and from_path.method.batch == 4 and from_path.workers.n == 3
    copied = ao.load_config(from_path, ["method.lr=0.5"])
    assert copied.method.lr == 0.5 and from_path.method.lr == 0.2  # the argument is not changed
    from_dict = ao.load_config(_config(tmp_path), {"workers.n": np.int64(7), "method.delay_adaptive": np.bool_(True)})
    assert from_dict.workers.n == 7 and from_dict.method.params["delay_adaptive"] is True


def test_a_method_registered_in_python_runs_and_a_name_clash_is_refused(tmp_path):
    @ao.register_method
    class HalfStepSGD(ao.Method):
        name = "test_api_half_step"
        description = "async SGD with half the step, registered from a test"

        def start(self, server):
            for worker in range(server.n_workers):
                server.assign(worker, ao.Job(ao.JobKind.GRAD, server.version, self.batch))

        def on_result(self, server, worker, result):
            accepted = result.delay <= 2
            if accepted:
                server.publish(server.x - 0.5 * self.lr * result.vector, grads_used=result.n_grads,
                               max_delay=result.delay)
            server.assign(worker, ao.Job(ao.JobKind.GRAD, server.version, self.batch))
            return accepted

    result = ao.run(_config(tmp_path, method={"name": "test_api_half_step"}))
    dropped = result.events["accepted"] == 0
    assert np.all(result.events["delay"][dropped] > 2) and np.all(result.events["delay"][~dropped] <= 2)
    assert len(result.trace["time"]) == int((~dropped).sum())

    class Impostor(HalfStepSGD):
        name = "async_sgd"

    with pytest.raises(ao.ConfigError, match="'async_sgd'.*already taken"):
        ao.register_method(Impostor)
    with pytest.raises(ao.ConfigError, match="already taken"):
        ao.register_problem("quadratic", lambda config: None)


def test_a_method_that_raises_fails_the_run_with_a_run_error_naming_it(tmp_path):
    @ao.register_method
    class Crashing(ao.Method):
        name = "test_api_crashing"
        description = "raises at its third result"

        def start(self, server):
            self.seen = 0
            for worker in range(server.n_workers):
                server.assign(worker, ao.Job(ao.JobKind.GRAD, server.version, self.batch))

        def on_result(self, server, worker, result):
            self.seen += 1
            if self.seen == 3:
                raise ZeroDivisionError("the third result")
            server.assign(worker, ao.Job(ao.JobKind.GRAD, server.version, self.batch))
            return False

    with pytest.raises(ao.RunError, match="method 'test_api_crashing' failed in on_result: ZeroDivisionError") as raised:
        ao.run(_config(tmp_path, "crash", method={"name": "test_api_crashing"}))
    failed = ao.load(raised.value.path)
    assert failed.status == "failed" and "test_api_crashing" in failed.attrs["stop_reason"]
    assert len(failed.events["accepted"]) == 2 and not failed.events["accepted"].any()


def test_built_in_methods_and_problems_register_through_the_public_functions():
    from asyncopt_mpi.methods import METHODS, ORIGINS as METHOD_ORIGINS
    from asyncopt_mpi.problems import ORIGINS as PROBLEM_ORIGINS, PROBLEMS

    # Only register_method / register_problem write ORIGINS: an entry without one came in another way.
    assert set(METHODS) <= set(METHOD_ORIGINS) and set(PROBLEMS) <= set(PROBLEM_ORIGINS)
    assert {METHOD_ORIGINS[name] for name in ("async_sgd", "rennala_sgd", "freya_page")} == {"built-in"}
    assert {PROBLEM_ORIGINS[name] for name in ("quadratic", "logistic")} == {"built-in"}


def test_to_pandas_and_metrics_frame(tmp_path):
    pandas = pytest.importorskip("pandas", reason="pandas is optional")
    result = ao.run(_config(tmp_path))
    frame = result.metrics_frame()
    assert list(frame["suboptimality"]) == list(result.metrics["suboptimality"])
    assert set(frame["method"]) == {"async_sgd"} and set(frame["n_workers"]) == {4}
    trace = result.to_pandas("trace")
    assert isinstance(trace, pandas.DataFrame) and len(trace) == len(result.trace["time"])
    with pytest.raises(KeyError, match="no group 'nope'"):
        result.to_pandas("nope")


def test_without_pandas_a_clear_import_error(tmp_path, monkeypatch):
    result = ao.run(_config(tmp_path))
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now fails as if it were not installed
    with pytest.raises(ImportError, match="pip install pandas") as raised:
        result.metrics_frame()
    assert isinstance(raised.value, PandasMissingError)


def test_plugins_given_to_run_are_recorded(tmp_path):
    sys.path.insert(0, str(EXAMPLES))
    try:
        from least_squares import make_data
    finally:
        sys.path.pop(0)
    data = make_data(str(tmp_path / "ls.npz"), samples=100, dim=5)
    plugin = str(EXAMPLES / "least_squares.py")
    config = _config(tmp_path, problem={"name": "least_squares", "data": data, "dim": 5})
    del config["problem"]["noise"]  # least_squares has no noise: the key would be refused
    result = ao.run(config, plugins=[plugin])
    assert result.status == "completed" and plugin in result.plugins
    assert result.problem["dim"] == 5 and result.problem["n_samples"] == 100


@pytest.mark.mpi
@pytest.mark.timeout(400)
def test_run_with_the_mpi_backend_launches_mpiexec_and_loads_the_file(tmp_path):
    # A count ends the run (a loaded machine makes as many updates); the time is a backstop.
    config = _config(tmp_path, "mpi", workers={"n": 2, "compute_scale": 0.002},
                     stop={"iterations": 20, "time": 60.0})
    result = ao.run(config, backend="mpi", timeout=120)
    assert result.attrs["backend"] == "mpi" and result.attrs["n_workers"] == 2 and result.status == "completed"
    assert len(result.trace["time"]) == 20
    with pytest.raises(ao.ConfigError, match="ranks"):
        ao.run(_config(tmp_path, "mpi2", workers={"n": 2}), backend="mpi", ranks=1)
    with pytest.raises(ao.ConfigError, match="workers.n = 2 but mpiexec started 2 ranks"):  # the ranks' own error
        ao.run(_config(tmp_path, "mpi3", workers={"n": 2}), backend="mpi", ranks=2, timeout=120)


@pytest.mark.timeout(400)
def test_compare_in_python_example_prints_its_table(tmp_path):
    done = subprocess.run([sys.executable, str(EXAMPLES / "compare_in_python.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["method", "updates", "gradients"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"async_sgd", "rennala_sgd", "fedbuff"}
    for name, row in rows.items():
        assert int(row[1]) > 0 and float(row[3]) < 1.0, row
        assert ao.load(tmp_path / f"{name}.h5").status == "completed"


def test_torch_model_example(tmp_path):
    pytest.importorskip("torch", reason="torch is optional (never installed in CI); the example needs it")
    result = ao.run(_config(tmp_path, problem={"name": "torch_mlp", "samples": 128}, stop={"time": 0.5}),
                    plugins=[str(EXAMPLES / "torch_model.py")])
    assert result.status == "completed"
    assert result.metrics["loss"][-1] < result.metrics["loss"][0]


def test_readme_fedbuff_listing_is_the_example():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Writing a method", 1)[1]
    listing = section.split("```python", 1)[1].split("```", 1)[0]
    example = (EXAMPLES / "fedbuff.py").read_text()

    def code(text: str) -> list[str]:
        return [line.split("  #")[0].rstrip() for line in text.splitlines() if line.strip() and "#" != line.strip()[0]]

    body = code(example.split('"""', 2)[2])
    assert code(listing) == [line for line in body if line.strip()], "README's FedBuff listing differs from examples/fedbuff.py"


def test_an_existing_results_file_is_kept_unless_overwrite(tmp_path):
    from asyncopt_mpi.errors import UserError

    first = ao.run(_config(tmp_path, "again"))
    with pytest.raises(UserError, match="exists"):
        ao.run(_config(tmp_path, "again", method={"lr": 0.05}))
    assert ao.load(first.path).attrs["config"] == first.attrs["config"]
    second = ao.run(_config(tmp_path, "again", method={"lr": 0.05}), overwrite=True)
    assert "lr = 0.05" in second.attrs["config"]


def test_the_module_docstring_example_runs(tmp_path, monkeypatch, capsys):
    pytest.importorskip("pandas", reason="the example ends with metrics_frame()")
    monkeypatch.chdir(tmp_path)
    code = ao.__doc__.split("::\n", 1)[1].split("\nFor the MPI")[0]
    code = "\n".join(line[4:] for line in code.splitlines())
    exec(compile(code, "asyncopt_mpi.__doc__", "exec"), {})
    printed = capsys.readouterr().out.split()
    assert printed[-1] == "completed" and float(printed[0]) < 0.1
    loaded = ao.load(tmp_path / "plain.h5")
    assert loaded.method == "plain_async_sgd" and loaded.plugins == []  # exec'd code: nothing to import again


def test_an_in_process_run_leaves_the_garbage_collector_as_it_was(tmp_path):
    import gc

    before = gc.get_threshold()
    ao.run(_config(tmp_path, "collector"))  # the simulator's loop collects less often while it runs
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0 and gc.isenabled()
