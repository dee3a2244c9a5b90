"""Files a run creates beside its results file (.lock, .partial, .reserve, .recovering) are never
written through a link (issue 24, item 1; side_files.py).

A symbolic link, a hard link or a FIFO planted in a side file's place is refused with one line,
exit 2, by `run` (simulator and `mpiexec -n 2`), `evaluate` and `--resume`; what it points to
(a scratch file of the test) keeps its bytes, the planted entry stays, and nothing else is left
behind. A non-UTF-8 output name is refused the same way.
"""

from __future__ import annotations

import os
import stat

import h5py
import pytest
from click.testing import CliRunner

from asyncopt_mpi.cli import cli
from asyncopt_mpi.results import ResultsWriter
from conftest import run_cli, run_mpi
from test_file_safety import DEMO, SIM, digest, killed_run_file, one_error_line

PRECIOUS = b"precious: not the run's to write\n"
SUFFIXES = (".lock", ".partial", ".reserve", ".recovering")
OTHER_USER = 65534  # nobody: a file of another user can be planted only by root


def plant(name: str, kind: str, scratch) -> None:
    """A symlink or hard link to the scratch file, a FIFO, or another user's file at `name`."""
    if kind == "symlink":
        os.symlink(scratch, name)
    elif kind == "hardlink":
        os.link(scratch, name)
    elif kind == "fifo":
        os.mkfifo(name)
    else:
        with open(name, "wb") as handle:
            handle.write(PRECIOUS)
        os.chown(name, OTHER_USER, OTHER_USER)


def scratch_file(tmp_path):
    scratch = tmp_path / "scratch.txt"
    scratch.write_bytes(PRECIOUS)
    return scratch


def assert_planted_and_untouched(name: str, kind: str, scratch) -> None:
    mode = os.lstat(name).st_mode
    kinds = {"symlink": stat.S_ISLNK, "hardlink": stat.S_ISREG, "fifo": stat.S_ISFIFO, "foreign": stat.S_ISREG}
    assert kinds[kind](mode), kind
    assert scratch.read_bytes() == PRECIOUS
    if kind == "foreign":
        assert open(name, "rb").read() == PRECIOUS and os.lstat(name).st_uid == OTHER_USER


def refusal(result_stderr: str, name: str) -> str:
    line = one_error_line(result_stderr)
    assert os.path.basename(name) in line and "side file" in line, line
    return line


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["symlink", "hardlink", "fifo", "foreign"])
@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_link_fifo_or_foreign_file_in_a_side_files_place_is_refused_and_never_written(tmp_path, suffix, kind):
    if kind == "foreign" and os.geteuid() != 0:
        pytest.skip("only root can plant another user's file")
    scratch, output = scratch_file(tmp_path), str(tmp_path / "o.h5")
    plant(output + suffix, kind, scratch)
    done = CliRunner().invoke(cli, ["run", DEMO, *SIM, "--output", output])
    assert done.exit_code == 2, done.output
    refusal(done.stderr, output + suffix)
    assert_planted_and_untouched(output + suffix, kind, scratch)
    assert sorted(os.listdir(tmp_path)) == sorted(["scratch.txt", "o.h5" + suffix])  # nothing created


@pytest.mark.timeout(120)
def test_a_symlinked_staged_file_no_longer_makes_the_results_file_a_symlink(tmp_path):
    scratch, output = scratch_file(tmp_path), str(tmp_path / "o.h5")
    os.symlink(scratch, output + ".partial")
    done = CliRunner().invoke(cli, ["run", DEMO, *SIM, "--output", output])
    assert done.exit_code == 2 and scratch.read_bytes() == PRECIOUS and not os.path.lexists(output)
    os.unlink(output + ".partial")
    (tmp_path / "o.h5.partial").write_bytes(b"a stale staged file of an earlier run")  # ours: replaced
    done = CliRunner().invoke(cli, ["run", DEMO, *SIM, "--output", output])
    assert done.exit_code == 0, done.output
    assert stat.S_ISREG(os.lstat(output).st_mode) and os.lstat(output).st_nlink == 1
    assert sorted(os.listdir(tmp_path)) == ["o.h5", "scratch.txt"]


@pytest.mark.mpi
@pytest.mark.timeout(300)
def test_under_mpiexec_side_file_links_are_refused_by_run_and_resume(tmp_path):
    scratch, output = scratch_file(tmp_path), str(tmp_path / "m.h5")
    for suffix in (".lock", ".partial"):  # the other places are checked by the same code on rank 0
        os.symlink(scratch, output + suffix)
        done = run_mpi(2, ["run", DEMO, "--quiet", "--set", "stop.iterations=10", "--output", output], timeout=200)
        assert done.returncode == 2, done.stderr
        refusal(done.stderr, output + suffix)
        assert_planted_and_untouched(output + suffix, "symlink", scratch)
        assert sorted(os.listdir(tmp_path)) == sorted(["scratch.txt", "m.h5" + suffix])
        os.unlink(output + suffix)
    done = run_mpi(2, ["run", DEMO, "--quiet", "--set", "stop.iterations=10", "--output", output], timeout=200)
    assert done.returncode == 0, done.stderr
    before = digest(output)
    os.symlink(scratch, output + ".partial")  # the copy a resumed run works on
    done = run_mpi(2, ["run", "--resume", output, "--quiet", "--set", "stop.iterations=20"], timeout=200)
    assert done.returncode == 2, done.stderr
    refusal(done.stderr, output + ".partial")
    assert_planted_and_untouched(output + ".partial", "symlink", scratch)
    assert digest(output) == before


@pytest.mark.timeout(300)
def test_evaluate_never_writes_through_a_lock_or_recovering_link(tmp_path):
    scratch, path = scratch_file(tmp_path), str(tmp_path / "killed.h5")
    killed_run_file(path)  # evaluate repairs it through PATH.recovering
    before = digest(path)
    for suffix, kind in ((".lock", "symlink"), (".recovering", "symlink"), (".recovering", "hardlink"),
                         (".recovering", "fifo")):
        plant(path + suffix, kind, scratch)
        done = run_cli(["evaluate", path])
        assert done.returncode == 2, done.stderr
        refusal(done.stderr, path + suffix)
        assert_planted_and_untouched(path + suffix, kind, scratch)
        assert digest(path) == before
        os.unlink(path + suffix)
    os.unlink(path + ".reserve")  # the killed writer's own
    os.symlink(scratch, path + ".reserve")  # a dead writer's reserve is removed, a link there is not
    done = run_cli(["evaluate", path])
    assert "the run ended without closing the file" in done.stderr
    assert os.path.islink(path + ".reserve") and scratch.read_bytes() == PRECIOUS
    assert not os.path.lexists(path + ".recovering") and not os.path.lexists(path + ".lock")
    with h5py.File(path, "r") as handle:  # repaired: a normally closed file
        assert handle.attrs["status"] == "failed"


@pytest.mark.timeout(300)
def test_resume_never_copies_through_a_staged_link(tmp_path):
    scratch, path = scratch_file(tmp_path), str(tmp_path / "run.h5")
    assert run_cli(["run", DEMO, *SIM, "--output", path]).returncode == 0
    before = digest(path)
    for kind in ("symlink", "hardlink", "fifo"):
        plant(path + ".partial", kind, scratch)
        done = run_cli(["run", "--resume", path, "--quiet", "--set", "stop.time=4"])
        assert done.returncode == 2, done.stderr
        refusal(done.stderr, path + ".partial")
        assert_planted_and_untouched(path + ".partial", kind, scratch)
        assert digest(path) == before and not os.path.lexists(path + ".lock")
        os.unlink(path + ".partial")


@pytest.mark.timeout(120)
def test_a_non_utf8_output_name_is_refused_and_leaves_nothing(tmp_path):
    output = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"\xff.h5"))
    done = run_cli(["run", DEMO, *SIM, "--output", output])
    assert done.returncode == 2, done.stderr
    assert "not a UTF-8 name" in one_error_line(done.stderr)
    assert os.listdir(tmp_path) == []


def test_a_writer_whose_set_up_fails_removes_its_staged_file(tmp_path):
    path = str(tmp_path / "w.h5")
    with pytest.raises(UnicodeEncodeError):  # an attribute HDF5 cannot store
        ResultsWriter(path, attrs={"config": "\udcff"}, dim=2, n_workers=1, staging=path + ".partial")
    assert os.listdir(tmp_path) == []
