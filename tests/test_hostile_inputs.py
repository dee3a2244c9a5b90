"""Tiny hostile inputs (issue 14, cases 6 and 7): declared sizes refused before allocation, endless runs refused.

Each case runs the real command under a timeout and asserts one error line naming the
file or key and the size, exit 2, and, where a declared size is the point, that the process
stayed small (no allocation of what the file declares): those start a fresh interpreter that
reports its peak memory; the other commands run forked from conftest's command server (run_cli).
"""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import zipfile

import h5py
import numpy as np
import pytest

from asyncopt_mpi.errors import DataError
from asyncopt_mpi.problems.data import detect_format, load_dataset, save_idx
from conftest import run_cli

BASE = ["--backend", "sim", "--quiet", "--set", "workers.n=2", "--set", "stop.iterations=5"]
LIMIT = 10**9  # problem.max_memory for these tests: 1 GB, independent of the machine's free memory


def asyncopt(args: list[str], tmp_path, timeout: float = 120) -> subprocess.CompletedProcess:
    """`asyncopt ARGS` in a child whose peak memory is reported in its stderr's last line."""
    probe = (
        "import resource, sys\n"
        "from asyncopt_mpi.cli import main\n"
        "try:\n    main()\n"
        "finally:\n"
        "    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "    print(f'PEAK_KB={peak}', file=sys.stderr)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=timeout, cwd=tmp_path,
    )


def refused(done: subprocess.CompletedProcess, *fragments: str, peak_mb: float = 600) -> str:
    """The one error line of a refused run of asyncopt(); asserts exit 2, no traceback, small peak memory."""
    *lines, peak = done.stderr.strip().splitlines()
    line = _error_line(done, lines, fragments)
    peak_kb = int(peak.split("=")[1])
    assert peak_kb / 1024 < peak_mb, f"peak memory {peak_kb / 1024:.0f} MB while refusing"
    return line


def one_line(done: subprocess.CompletedProcess, *fragments: str) -> str:
    """The one error line of a refused command (run_cli); asserts exit 2 and no traceback."""
    return _error_line(done, done.stderr.strip().splitlines(), fragments)


def _error_line(done: subprocess.CompletedProcess, lines: list[str], fragments: tuple[str, ...]) -> str:
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1, lines
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def data_run(path: str, *extra: str, output: str = "out.h5") -> list[str]:
    return ["run", *BASE, "--set", "problem.name=logistic", "--set", f"problem.data={path}",
            "--set", f"problem.max_memory={LIMIT}", "--output", output, *extra]


# ---------------------------------------------------------------- case 6: declared sizes


def test_libsvm_feature_index_2147483647_is_refused_naming_file_and_size(tmp_path):
    path = tmp_path / "huge.svm"
    path.write_text("1 2147483647:1\n-1 1:1 5:2\n")
    assert path.stat().st_size < 34
    line = refused(asyncopt(data_run(str(path)), tmp_path), "huge.svm:1", "2147483647", "GB", "problem.max_memory")
    assert "275 GB" in line  # 16 vectors of 2147483647 float64


def test_npz_declaring_a_2_to_the_31_shape_is_refused_from_its_header(tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (2**31, 1)})
    labels = io.BytesIO()
    np.save(labels, np.array([1.0, -1.0]))
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("X.npy", header.getvalue())  # a header, no data: only the declared shape is huge
        archive.writestr("y.npy", labels.getvalue())
    refused(asyncopt(data_run(str(path)), tmp_path), "huge.npz", "'X'", "(2147483648, 1)", "17.2 GB")


def test_hdf5_declaring_10_6_by_10_6_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("X", shape=(10**6, 10**6), dtype="f8", chunks=(1000, 1000))
        handle.create_dataset("y", data=np.ones(10**6))
    assert path.stat().st_size < 16 * 2**20
    refused(asyncopt(data_run(str(path)), tmp_path), "huge.h5", "'X'", "(1000000, 1000000)", "8 TB")


def test_gzip_that_inflates_past_the_budget_is_refused_by_its_trailer(tmp_path):
    path = tmp_path / "bomb.svm.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(b"1 1:1\n-1 2:1\n")
        for _ in range(300):
            handle.write(b" " * 2**20)
    line = refused(asyncopt(data_run(str(path), "--set", "problem.max_memory=100e6"), tmp_path),
                   "bomb.svm.gz", "inflates to", "gzip")
    assert "315 MB" in line


def test_multi_member_gzip_is_caught_by_the_capped_read(tmp_path):
    """The trailer only describes the last member; the streaming cap still stops the inflation."""
    big = gzip.compress(b"1 1:1\n-1 2:1\n" + b" " * (30 * 2**20))
    path = tmp_path / "members.svm.gz"
    path.write_bytes(big + gzip.compress(b"\n"))
    refused(asyncopt(data_run(str(path), "--set", "problem.max_memory=80e6"), tmp_path),
            "members.svm.gz", "inflates to more than")  # 5 MB (80 MB / 16), 20 MB with scikit-learn's reader


def test_idx_header_declaring_billions_of_pixels_is_refused_before_inflating(tmp_path):
    images = tmp_path / "images.gz"
    with gzip.open(images, "wb") as handle:
        handle.write(bytes([0, 0, 0x08, 3]) + np.array([60000, 30000, 30000], dtype=">u4").tobytes())
        handle.write(b"\0" * 2**20)
    labels = tmp_path / "labels"
    save_idx(str(labels), np.zeros(3, dtype=np.uint8))
    refused(asyncopt(data_run(f"{images}:{labels}"), tmp_path), "images.gz", "(60000, 30000, 30000)")


def test_problem_dim_10_9_is_refused_at_once(tmp_path):
    done = asyncopt(["run", *BASE, "--set", "problem.dim=1000000000", "--output", "out.h5"], tmp_path, timeout=60)
    refused(done, "problem.dim = 1000000000", "GB", "problem.max_memory")


def test_ten_million_workers_are_refused_by_memory_not_left_silent(tmp_path):
    done = asyncopt(["run", *BASE[:-4], "--set", "workers.n=10000000", "--set", "stop.iterations=5",
                     "--set", f"problem.max_memory={LIMIT}", "--output", "out.h5"], tmp_path, timeout=60)
    refused(done, "workers.n = 10000000", "57 GB", "problem.max_memory = 1 GB")


# ---------------------------------------------------------------- case 6: endless simulator runs


@pytest.mark.parametrize("setting", ["workers.compute_scale=0", "workers.compute_scale=1e-12",
                                     "workers.compute_times=[0.01, 0.0]"])
def test_zero_or_tiny_compute_times_are_refused_in_the_simulator(tmp_path, setting):
    done = run_cli(["run", "--backend", "sim", "--quiet", "--set", "workers.n=2", "--set", "stop.time=1",
                    "--set", setting, "--output", str(tmp_path / "out.h5")], timeout=60)
    one_line(done, setting.split("=")[0], ">= 1e-09 s")


def test_a_run_stopped_on_time_only_that_would_take_billions_of_gradients_is_refused(tmp_path):
    done = run_cli(["run", "--backend", "sim", "--quiet", "--set", "workers.n=4", "--set", "workers.compute_scale=1e-9",
                    "--set", "stop.time=10", "--output", str(tmp_path / "out.h5")], timeout=60)
    one_line(done, "stop.time = 10.0", "gradients", "stop.iterations")


def test_tiny_compute_times_still_end_on_iterations_and_gradients(tmp_path):
    for stop in ("stop.iterations=400", "stop.gradients=300"):
        done = run_cli(["run", "--backend", "sim", "--quiet", "--set", "workers.n=4", "--set", "workers.compute_scale=1e-9",
                        "--set", "stop.time=10", "--set", stop, "--output", str(tmp_path / f"{stop}.h5")])
        assert done.returncode == 0, done.stderr
        assert f"{stop.replace('=', ' = ')} reached" in done.stdout + done.stderr


# ---------------------------------------------------------------- case 7: IDX content, not names


def test_zero_images_and_nan_pixels_are_one_line_errors(tmp_path):
    labels = str(tmp_path / "labels")
    save_idx(labels, np.zeros(0, dtype=np.uint8))
    empty = str(tmp_path / "empty")
    save_idx(empty, np.zeros((0, 4, 4), dtype=np.uint8))
    with pytest.raises(DataError, match="empty: no images"):
        load_dataset(f"{empty}:{labels}")
    nan_images = str(tmp_path / "nan")
    pixels = np.ones((2, 2, 2), dtype=np.float32)
    pixels[1, 0, 1] = np.nan
    save_idx(nan_images, pixels)
    save_idx(labels, np.array([0, 1], dtype=np.uint8))
    with pytest.raises(DataError, match="nan: pixel values contain nan or inf"):
        load_dataset(f"{nan_images}:{labels}")
    done = run_cli(data_run(f"{nan_images}:{labels}", output=str(tmp_path / "out.h5")))
    one_line(done, "pixel values contain nan")


def test_a_name_containing_idx_is_not_read_as_idx(tmp_path):
    libsvm = tmp_path / "my_idx_features.txt"
    libsvm.write_text("1 1:0.5 3:1\n-1 2:1\n")
    assert detect_format(str(libsvm)) == "libsvm"
    X, y = load_dataset(str(libsvm))
    assert X.shape == (2, 3) and list(y) == [1.0, -1.0]
    # ...while real IDX content is recognised whatever its name (and inside gzip).
    for name in ("pixels.bin", "pixels.bin.gz"):
        save_idx(str(tmp_path / name), np.zeros((3, 2, 2), dtype=np.uint8))
        assert detect_format(str(tmp_path / name)) == "idx"
    np.savez(tmp_path / "arrays.dat", X=np.ones((2, 2)), y=np.array([0.0, 1.0]))
    assert detect_format(str(tmp_path / "arrays.dat.npz")) == "npz"
    done = run_cli(data_run(str(libsvm), output=str(tmp_path / "out.h5")))
    assert done.returncode == 0, done.stderr


def test_plot_to_an_unsupported_extension_lists_the_accepted_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = run_cli(["run", *BASE, "--output", "r.h5"])
    assert run.returncode == 0, run.stderr
    done = run_cli(["plot", "r.h5", "-o", "x.xyz"])
    line = one_line(done, "x.xyz", "accepted:", "png", "pdf", "svg")
    assert not os.path.exists(tmp_path / "x.xyz") and line.startswith("asyncopt: error:")


def test_memory_budget_defaults_to_half_the_available_memory_per_local_rank(monkeypatch):
    from asyncopt_mpi import memory

    monkeypatch.setattr(memory, "available_memory", lambda: 8_000_000_000)
    monkeypatch.delenv("MPI_LOCALNRANKS", raising=False)
    monkeypatch.delenv("OMPI_COMM_WORLD_LOCAL_SIZE", raising=False)
    monkeypatch.delenv("SLURM_NTASKS_PER_NODE", raising=False)
    assert memory.budget(0) == 4_000_000_000
    assert memory.budget(123) == 123
    monkeypatch.setenv("MPI_LOCALNRANKS", "4")
    assert memory.budget(0) == 1_000_000_000


@pytest.mark.mpi
def test_over_mpi_a_huge_declared_size_ends_every_rank_with_one_line(tmp_path):
    from conftest import project_lines, run_mpi

    path = tmp_path / "huge.svm"
    path.write_text("1 2147483647:1\n-1 1:1 5:2\n")
    done = run_mpi(3, ["run", "--quiet", "--set", "problem.name=logistic", "--set", f"problem.data={path}",
                       "--set", f"problem.max_memory={LIMIT}", "--set", "stop.time=5", "--output",
                       str(tmp_path / "out.h5")], timeout=120)
    lines = project_lines(done.stderr)  # not the launcher's banner (prterun adds one)
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "huge.svm:1: feature index 2147483647" in lines[0] and "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "out.h5").exists()


def test_a_stored_config_with_a_surrogate_escape_is_one_line_for_evaluate_plot_and_summary(tmp_path, monkeypatch):
    """An old results file whose stored config holds \\udcff (a non-UTF-8 path escaped as JSON does)."""
    monkeypatch.chdir(tmp_path)
    run = run_cli(["run", *BASE, "--output", "r.h5"])
    assert run.returncode == 0, run.stderr
    with h5py.File(tmp_path / "r.h5", "r+") as handle:
        text = handle.attrs["config"]
        text = text.decode() if isinstance(text, bytes) else str(text)
        assert 'path = "' in text
        handle.attrs["config"] = text.replace('path = "', 'path = "\\udcff', 1)
    for command in (["evaluate", "r.h5"], ["plot", "r.h5", "-o", "r.png"], ["summary", "r.h5"]):
        line = one_line(run_cli(command), "r.h5", "the stored config is not valid TOML")
        assert line.startswith("asyncopt: error:"), (command, line)
    assert not os.path.exists(tmp_path / "r.png")


@pytest.mark.mpi
def test_over_mpi_max_memory_counts_the_workers_mpiexec_started(tmp_path):
    """workers.n unset: validation counts 1 worker; rank 0 checks again with size - 1 (its per-worker buffers)."""
    from conftest import project_lines, run_mpi

    from asyncopt_mpi.memory import run_bytes

    data = 8 * 20 * 4  # the quadratic's own arrays at dim 20 (its memory_estimate)
    limit = data + (run_bytes(20, 1) + run_bytes(20, 2)) // 2  # enough for 1 worker, not for 2
    args = ["run", "--quiet", "--set", "problem.dim=20", "--set", f"problem.max_memory={limit}",
            "--set", "stop.iterations=20"]
    fits = run_mpi(2, [*args, "--output", str(tmp_path / "one.h5")], timeout=120)
    assert fits.returncode == 0, fits.stderr
    done = run_mpi(3, [*args, "--output", str(tmp_path / "two.h5")], timeout=120)
    lines = project_lines(done.stderr)  # not the launcher's banner (prterun adds one)
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "workers.n = 2 (mpiexec started 3 ranks)" in lines[0] and "max_memory = " in lines[0], lines[0]
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "two.h5").exists()


def test_a_slow_simulator_set_up_says_what_it_is_doing_unless_quiet(tmp_path, monkeypatch):
    """Set-up lines appear once set-up outlasts the threshold (forced low by ASYNCOPT_PROGRESS_SECONDS), never with --quiet."""
    def run(n: int, name: str, *extra: str, seconds: str | None = None) -> subprocess.CompletedProcess:
        if seconds is None:
            monkeypatch.delenv("ASYNCOPT_PROGRESS_SECONDS", raising=False)
        else:
            monkeypatch.setenv("ASYNCOPT_PROGRESS_SECONDS", seconds)
        done = run_cli(["run", "--backend", "sim", "--set", f"workers.n={n}", "--set", "stop.iterations=10",
                        "--output", str(tmp_path / name), *extra], timeout=300)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        return done

    slow = run(20000, "slow.h5", seconds="0.01")
    lines = [line for line in slow.stderr.splitlines() if "setting up 20000 simulated workers: " in line]
    assert lines and all(line.startswith("asyncopt: ") and "s so far)" in line for line in lines), slow.stderr
    assert not run(20000, "quiet.h5", "--quiet", seconds="0.01").stderr.strip()
    assert "setting up" not in run(4, "fast.h5").stderr  # a set-up of 4 workers is far below 2 s
