"""Tests for config loading (asyncopt_mpi.config): TOML files, --set overrides, validation errors, to_toml round trip."""

from __future__ import annotations

import dataclasses
import tomllib

import pytest

from asyncopt_mpi.config import (
    COMM_MODELS,
    COMPUTE_MODELS,
    COMPUTE_PROFILES,
    SECTIONS,
    Config,
    parse_value,
)
from asyncopt_mpi.errors import AsyncoptError, ConfigError, UserError
from asyncopt_mpi.methods import METHODS
from asyncopt_mpi.problems import PROBLEMS
from asyncopt_mpi.validate import build_config, load_config, validate

BASE = """
[problem]
name = "quadratic"
dim = 8

[method]
name = "async_sgd"
lr = 0.05

[workers]
n = 3

[stop]
iterations = 20
"""


def write(tmp_path, text: str, name: str = "run.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def config_error(*args, **kwargs) -> ConfigError:
    """The ConfigError load_config raises for these arguments (fails the test if none is raised)."""
    with pytest.raises(ConfigError) as info:
        load_config(*args, **kwargs)
    assert info.value.exit_code == 2
    return info.value


def sections_equal(a: Config, b: Config) -> None:
    for section in SECTIONS:
        assert getattr(a, section) == getattr(b, section), section


# ----- error types -------------------------------------------------------------------------


def test_config_error_is_a_user_error_with_exit_code_2():
    error = ConfigError("x")
    assert isinstance(error, UserError) and isinstance(error, AsyncoptError)
    assert error.exit_code == 2
    assert AsyncoptError("run failed").exit_code == 1


# ----- a valid file ------------------------------------------------------------------------


def test_file_values_are_loaded(tmp_path):
    config = load_config(write(tmp_path, BASE), [])
    assert config.problem.name == "quadratic"
    assert config.problem.dim == 8
    assert config.method.lr == 0.05
    assert config.workers.n == 3
    assert config.stop.iterations == 20
    assert config.stop.time is None
    assert config.backend == "mpi"
    assert config.source_text == (tmp_path / "run.toml").read_text()


def test_own_params_get_their_defaults_filled_in(tmp_path):
    config = load_config(write(tmp_path, BASE), [])
    declared_problem = PROBLEMS["quadratic"].params
    assert "L" in declared_problem
    assert config.problem.params == declared_problem
    assert config.method.params == METHODS["async_sgd"].params


def test_given_own_param_overrides_its_default_and_ints_widen_to_float(tmp_path):
    config = load_config(write(tmp_path, BASE.replace("dim = 8", "dim = 8\nL = 4")), [])
    assert config.problem.params["L"] == 4.0
    assert isinstance(config.problem.params["L"], float)
    # the other declared params keep their defaults
    for key, default in PROBLEMS["quadratic"].params.items():
        if key != "L":
            assert config.problem.params[key] == default


def test_int_given_for_float_key_becomes_float(tmp_path):
    config = load_config(write(tmp_path, BASE), ["method.lr=1", "stop.time=3"])
    assert config.method.lr == 1.0 and isinstance(config.method.lr, float)
    assert config.stop.time == 3.0 and isinstance(config.stop.time, float)


# ----- --set values and precedence ---------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("3", 3),
        ("-7", -7),
        ("2.5", 2.5),
        ("1e-3", 1e-3),
        ("true", True),
        ("false", False),
        ("[1, 2.5, 3]", [1, 2.5, 3]),
        ('"quoted"', "quoted"),
        ("bare_name", "bare_name"),
        ("path/to/file.h5", "path/to/file.h5"),
    ],
)
def test_parse_value_reads_toml_else_plain_string(text, expected):
    value = parse_value(text)
    assert value == expected
    assert type(value) is type(expected)


def test_set_values_are_typed_and_override_the_file(tmp_path):
    path = write(tmp_path, BASE)
    config = load_config(
        path,
        [
            "problem.dim=12",
            "method.lr=0.25",
            "workers.compute_times=[0.1, 0.2, 0.3]",
            "workers.compute=uniform",
            "problem.L=2.5",
            "stop.time=1.5",
        ],
    )
    assert config.problem.dim == 12
    assert config.method.lr == 0.25
    assert config.workers.compute_times == [0.1, 0.2, 0.3]
    assert config.workers.compute == "uniform"
    assert config.problem.params["L"] == 2.5
    assert config.stop.time == 1.5
    assert config.stop.iterations == 20  # untouched key of the file survives


def test_set_without_a_file():
    config = load_config(None, ["stop.gradients=100", "workers.n=2"])
    assert config.stop.gradients == 100
    assert config.workers.n == 2
    assert config.source_text == ""


def test_method_option_overrides_method_name(tmp_path):
    path = write(tmp_path, BASE)
    config = load_config(path, ["method.name=async_sgd"], method="minibatch_sgd")
    assert config.method.name == "minibatch_sgd"
    assert config.method.params == METHODS["minibatch_sgd"].params


def test_output_and_backend_options(tmp_path):
    out = str(tmp_path / "x.h5")
    config = load_config(write(tmp_path, BASE), [], backend="sim", output=out)
    assert config.backend == "sim"
    assert config.output.path == out
    assert config.output_path() == out


def test_output_path_placeholders_are_filled(tmp_path):
    config = load_config(write(tmp_path, BASE), ["output.path=r/{method}-{problem}-{backend}.h5"], backend="sim")
    assert config.output_path() == "r/async_sgd-quadratic-sim.h5"


# ----- errors ------------------------------------------------------------------------------


def test_unknown_section(tmp_path):
    path = write(tmp_path, BASE + "\n[solver]\nx = 1\n")
    message = str(config_error(path, []))
    assert "solver" in message
    for section in SECTIONS:
        assert section in message


def test_unknown_key_in_fixed_section(tmp_path):
    message = str(config_error(write(tmp_path, BASE), ["workers.compte=fixed"]))
    assert "workers.compte" in message
    for accepted in ("compute", "compute_scale", "comm", "n"):
        assert accepted in message


def test_unknown_key_for_the_method(tmp_path):
    message = str(config_error(write(tmp_path, BASE), ["method.S=4"]))
    assert "method.S" in message
    assert "async_sgd" in message
    for accepted in ("lr", "batch", "assign"):
        assert accepted in message


def test_unknown_key_for_the_problem(tmp_path):
    message = str(config_error(write(tmp_path, BASE), ["problem.foo=1"]))
    assert "problem.foo" in message
    assert "quadratic" in message
    for accepted in ("dim", "noise", "L"):
        assert accepted in message


def test_unknown_key_in_the_file_is_caught_like_a_set(tmp_path):
    path = write(tmp_path, BASE.replace("lr = 0.05", "lr = 0.05\nS = 3"))
    assert "method.S" in str(config_error(path, []))


def test_unknown_method_name(tmp_path):
    message = str(config_error(write(tmp_path, BASE), [], method="asnyc_sgd"))
    assert "method.name" in message
    assert "asnyc_sgd" in message
    assert "async_sgd" in message and "minibatch_sgd" in message


def test_unknown_method_name_in_file(tmp_path):
    message = str(config_error(write(tmp_path, BASE.replace('name = "async_sgd"', 'name = "sgd"')), []))
    assert "'sgd'" in message and "minibatch_sgd" in message


@pytest.mark.parametrize("key", ["stop.time", "stop.iterations", "stop.gradients"])
def test_negative_stop_rule(tmp_path, key):
    message = str(config_error(write(tmp_path, BASE), [f"{key}=-1"]))
    assert key in message
    assert (">= 0" if key == "stop.time" else ">= 1") in message  # a count of 0 would still make one update


def test_no_stop_rule(tmp_path):
    path = write(tmp_path, BASE.replace("[stop]\niterations = 20\n", ""))
    message = str(config_error(path, []))
    for key in ("stop.time", "stop.iterations", "stop.gradients"):
        assert key in message


@pytest.mark.parametrize(
    "override, key, expected",
    [
        ('problem.dim="ten"', "problem.dim", "integer"),
        ("problem.dim=ten", "problem.dim", "integer"),
        ("problem.dim=2.5", "problem.dim", "integer"),
        ("problem.dim=true", "problem.dim", "integer"),
        ("method.lr=true", "method.lr", "number"),
        ('method.lr="fast"', "method.lr", "number"),
        ("method.name=3", "method.name", "async_sgd"),
        ("workers.compute_times=[1, true]", "workers.compute_times", "list of numbers"),
        ("workers.compute_times=0.5", "workers.compute_times", "list of numbers"),
        ("problem.L=true", "problem.L", "float"),
        ("method.assign=1", "method.assign", "str"),
    ],
)
def test_wrong_types(tmp_path, override, key, expected):
    message = str(config_error(write(tmp_path, BASE), [override]))
    assert key in message
    assert expected in message


def test_wrong_type_in_file(tmp_path):
    path = write(tmp_path, BASE.replace("dim = 8", 'dim = "ten"'))
    message = str(config_error(path, []))
    assert "problem.dim" in message and "ten" in message


@pytest.mark.parametrize("override", ["method.lr", "methodlr=0.1", "lr=0.1", "method.=0.1"])
def test_malformed_set(tmp_path, override):
    message = str(config_error(write(tmp_path, BASE), [override]))
    assert repr(override) in message
    assert "section.key=value" in message


def test_set_into_a_value_that_is_not_a_section(tmp_path):
    path = write(tmp_path, "backend = 1\n" + BASE)
    message = str(config_error(path, ["backend.x=1"]))
    assert "backend" in message


def test_missing_data_file(tmp_path):
    missing = tmp_path / "no_such.svm"
    message = str(config_error(write(tmp_path, BASE), ["problem.name=logistic", f"problem.data={missing}"]))
    assert "problem.data" in message
    assert str(missing) in message


def test_existing_data_file_is_accepted(tmp_path):
    data = tmp_path / "d.svm"
    data.write_text("1 1:0.5\n-1 2:1.0\n")
    config = load_config(write(tmp_path, BASE), ["problem.name=logistic", f"problem.data={data}"])
    assert config.problem.data == str(data)


def test_missing_config_file(tmp_path):
    missing = tmp_path / "absent.toml"
    message = str(config_error(str(missing), []))
    assert str(missing) in message
    assert "not found" in message


def test_invalid_toml(tmp_path):
    path = write(tmp_path, "[problem\nname = ")
    message = str(config_error(path, []))
    assert path in message
    assert "TOML" in message


def test_section_given_as_a_value(tmp_path):
    path = write(tmp_path, 'problem = "quadratic"\n[stop]\ntime = 1\n')
    message = str(config_error(path, []))
    assert "problem" in message and "section" in message


def test_assign_rejected_by_the_method(tmp_path):
    message = str(config_error(write(tmp_path, BASE), ["method.assign=bogus"]))
    assert "method.assign" in message
    assert "bogus" in message
    assert "pure" in message


@pytest.mark.parametrize("key", ["compute_times", "comm_times"])
def test_per_worker_times_must_match_workers_n(tmp_path, key):
    message = str(config_error(write(tmp_path, BASE), [f"workers.{key}=[0.1, 0.2]"]))
    assert f"workers.{key}" in message
    assert "2" in message and "3" in message


def test_per_worker_times_of_the_right_length_are_accepted(tmp_path):
    config = load_config(write(tmp_path, BASE), ["workers.compute_times=[0.1, 0.2, inf]"])
    assert config.workers.compute_times[:2] == [0.1, 0.2]
    assert config.workers.compute_times[2] == float("inf")


@pytest.mark.parametrize(
    "override, key",
    [
        ("workers.compute=lognormal", "workers.compute"),
        ("workers.comm=fast", "workers.comm"),
        ("workers.compute_profile=cubic", "workers.compute_profile"),
        ("problem.name=rosenbrock", "problem.name"),
    ],
)
def test_unknown_choice_lists_accepted_values(tmp_path, override, key):
    accepted = {
        "workers.compute": COMPUTE_MODELS,
        "workers.comm": COMM_MODELS,
        "workers.compute_profile": COMPUTE_PROFILES,
        "problem.name": tuple(PROBLEMS),
    }[key]
    message = str(config_error(write(tmp_path, BASE), [override]))
    assert key in message
    for name in accepted:
        assert name in message


@pytest.mark.parametrize(
    "override, key",
    [
        ("method.lr=0", "method.lr"),
        ("method.batch=0", "method.batch"),
        ("problem.dim=0", "problem.dim"),
        ("workers.n=0", "workers.n"),
        ("workers.compute_scale=-0.1", "workers.compute_scale"),
        ("workers.compute_p=0", "workers.compute_p"),
        ("workers.compute_p=1.5", "workers.compute_p"),
        ("stop.time=nan", "stop.time"),
    ],
)
def test_out_of_range_values(tmp_path, override, key):
    assert key in str(config_error(write(tmp_path, BASE), [override]))


def test_bad_backend(tmp_path):
    message = str(config_error(write(tmp_path, BASE), [], backend="gpu"))
    assert "gpu" in message and "mpi" in message and "sim" in message


def test_bad_output_placeholder(tmp_path):
    message = str(config_error(write(tmp_path, BASE), ["output.path=r/{methd}.h5"]))
    assert "output.path" in message and "{method}" in message


# ----- to_toml round trip ------------------------------------------------------------------


def test_to_toml_round_trip(tmp_path):
    path = write(tmp_path, BASE)
    config = load_config(
        path,
        [
            "workers.compute_times=[0.01, 0.02, inf]",
            "workers.compute=exponential",
            "problem.lam=0.25",
            "problem.noise=0.5",
            "stop.time=2.5",
            "stop.target=1e-6",
            'output.path=out dir/"quoted"\\name.h5',
            "graph.edges=a\tb",
        ],
        backend="sim",
    )
    text = config.to_toml()
    again = build_config(tomllib.loads(text), source="round trip")
    validate(again)
    sections_equal(config, again)
    # and the text is stable: serializing again gives the same TOML
    assert again.to_toml() == text


def test_to_toml_omits_unset_optional_keys(tmp_path):
    config = load_config(write(tmp_path, BASE.replace("n = 3", "compute = \"sqrt\"")), [])
    parsed = tomllib.loads(config.to_toml())
    assert "n" not in parsed["workers"]
    assert "time" not in parsed["stop"]
    assert parsed["stop"]["iterations"] == 20
    assert set(parsed) == set(SECTIONS)
    assert set(parsed["workers"]) == {f.name for f in dataclasses.fields(config.workers)} - {"n"}


def test_to_toml_round_trip_logistic_own_params(tmp_path):
    data = tmp_path / "d.svm"
    data.write_text("1 1:0.5\n-1 2:1.0\n")
    config = load_config(
        write(tmp_path, BASE),
        ["problem.name=logistic", f"problem.data={data}", "problem.bias=true", "problem.l2=0.01"],
    )
    again = build_config(tomllib.loads(config.to_toml()))
    validate(again)
    sections_equal(config, again)
    assert again.problem.params["bias"] is True


def test_to_toml_round_trip_string_with_newline(tmp_path):
    path = write(tmp_path, BASE + '\n[output]\npath = "runs/a\\nb.h5"\n')
    config = load_config(path, [])
    assert config.output.path == "runs/a\nb.h5"
    again = build_config(tomllib.loads(config.to_toml()))
    validate(again)
    sections_equal(config, again)
