"""Fuzz of the results readers: hundreds of hostile results files, each read fine or refused in one line.

Hostile files are made from a few real results files (quick simulator runs, once per module):
random bytes overwritten at random offsets, runs of bytes overwritten, truncations at random
lengths, a huge end-of-file address in the superblock, and empty, text and foreign HDF5 files.
Each goes to the in-process readers (read_run, open_results, check_readable, read_backend,
read_resume_point, is_cleanly_closed, summary's reader, final_stats, recover into a target path,
asyncopt_mpi.load); each must return or raise the project's UserError/RunError with one line,
within a bounded CPU time (wall time is the machine's load; a child silent for HANG_SECONDS is
hung), and leave no file beside the input but recover's finished target.

h5py can crash (SIGSEGV) or hang on a damaged file, so the loop runs in a child process under a
timeout: a crash or hang is reported with the input that caused it (saved under tmp_path), and
the loop goes on in a new child from the next input.

`make test` reads 150 inputs (every kind of damage on every base file among them);
ASYNCOPT_TEST_FULL=1 (`make test-full`) 1,000. FUZZ_SEED and FUZZ_INPUTS change the draw.
"""

from __future__ import annotations

import json
import os
import queue
import random
import resource
import shutil
import subprocess
import sys
import threading
import time

import h5py
import pytest

from full_suite import count

SEED = int(os.environ.get("FUZZ_SEED", "24"))
INPUTS = count("FUZZ_INPUTS", 150, 1000)
SECONDS_PER_INPUT = 15.0  # CPU of every reader of one input together, probes included (each up to 10 s wall)
HANG_SECONDS = 60.0  # a child silent this long on one input is hung
LONGEST_LINE = 1000
KINDS = ("bytes", "run", "truncate", "superblock", "empty", "text", "foreign")
BASES = 3  # a.h5, k.h5 (marked open: each is probed in a child process, the slow path), r.h5


def draw(index: int) -> tuple[str, int, random.Random]:
    """Input number `index`'s kind of damage, its base file's number and the generator that places the damage."""
    rng = random.Random(SEED * 1_000_003 + index)
    kind = rng.choices(KINDS, weights=(50, 20, 20, 4, 2, 2, 2))[0]
    return kind, rng.choices(range(BASES), weights=(10, 1, 10))[0], rng


def hostile(bases: list[bytes], index: int) -> bytes:
    """Input number `index`: a deterministic damage of one of the base files (or a file of another kind)."""
    kind, base, rng = draw(index)
    data = bytearray(bases[base])
    if kind == "bytes":
        for _ in range(rng.randint(1, 32)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == "run":
        start = rng.randrange(len(data))
        data[start:start + rng.randint(1, 256)] = rng.randbytes(rng.randint(1, 256))
    elif kind == "truncate":
        del data[rng.randrange(len(data)):]
    elif kind == "superblock":  # v2/v3 superblock: end-of-file address at bytes 28..36
        data[28:36] = rng.choice([2**63 - 1, 2**40, len(data) * 1000]).to_bytes(8, "little")
    elif kind == "empty":
        data = bytearray()
    elif kind == "text":
        data = bytearray(b"not a results file\n" * rng.randint(1, 50))
    else:  # the HDF5 signature, then anything
        data = bytearray(data[:8] + rng.randbytes(rng.randint(0, 4096)))
    return bytes(data)


# ------------------------------------------------------------------ the child: read every input


def readers(path: str, folder: str) -> dict:
    """name -> a call of one reader on `path`."""
    import asyncopt_mpi
    from asyncopt_mpi import results
    from asyncopt_mpi.final_stats import final_stats
    from asyncopt_mpi.summary import summarize

    def opened() -> None:
        results.open_results(path).close()

    return {
        "open_results": opened,
        "check_readable": lambda: results.check_readable(path),
        "read_backend": lambda: results.read_backend(path),
        "is_cleanly_closed": lambda: results.is_cleanly_closed(path),
        "read_run": lambda: results.read_run(path),
        "read_resume_point": lambda: results.read_resume_point(path),
        "summary": lambda: summarize([path]),
        "final_stats": lambda: final_stats(path, "loss"),
        "load": lambda: asyncopt_mpi.load(path),
        "recover": lambda: results.recover(path, target_path=os.path.join(folder, "target.h5")),
    }


def _cpu_seconds() -> float:
    """CPU time of this process and of its children that ended (the probes of files marked open)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def child(bases_folder: str, work: str, first: int, last: int) -> None:
    """Read inputs first..last-1; one JSON line per input to stdout (so the parent knows where a crash was)."""
    from asyncopt_mpi.errors import AsyncoptError

    bases = [open(os.path.join(bases_folder, name), "rb").read() for name in sorted(os.listdir(bases_folder))]
    for index in range(first, last):
        folder = os.path.join(work, f"{index}")
        os.mkdir(folder)
        path = os.path.join(folder, "input.h5")
        with open(path, "wb") as handle:
            handle.write(hostile(bases, index))
        outcome = {"index": index, "fine": 0, "refused": 0, "bad": []}
        started = _cpu_seconds()
        for name, call in readers(path, folder).items():
            try:
                call()
                outcome["fine"] += 1
            except AsyncoptError as exc:
                text = str(exc)
                if "\n" in text or len(text) > LONGEST_LINE:
                    outcome["bad"].append(f"{name}: not one line: {text[:300]!r}")
                outcome["refused"] += 1
            except BaseException as exc:  # noqa: BLE001 (what the fuzz looks for)
                outcome["bad"].append(f"{name}: traceback: {type(exc).__name__}: {str(exc)[:300]}")
            if os.path.exists(os.path.join(folder, "target.h5")):
                os.unlink(os.path.join(folder, "target.h5"))  # recover's finished copy: its own output
        outcome["seconds"] = _cpu_seconds() - started
        left = sorted(set(os.listdir(folder)) - {"input.h5"})
        if left:
            outcome["bad"].append(f"left behind: {left}")
        shutil.rmtree(folder)
        print(json.dumps(outcome), flush=True)


# ------------------------------------------------------------------ the parent


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    """Real results files: a completed run with metrics, a run still marked open (its writer killed), a Rennala run."""
    from conftest import simulate

    folder = tmp_path_factory.mktemp("bases")
    work = tmp_path_factory.mktemp("runs")
    small = ["workers.n=3", "stop.time=1", "problem.dim=8", "output.snapshot_every=0.25"]
    shutil.move(simulate(work, "async_sgd", small, "a"), folder / "a.h5")
    shutil.move(simulate(work, "rennala_sgd", small + ["method.batch=2"], "r"), folder / "r.h5")
    killed = folder / "k.h5"
    shutil.copy(folder / "a.h5", killed)
    # A writer that dies with the file open (SWMR, as a run writes): the file stays marked open.
    code = ("import h5py, os, sys\nf = h5py.File(sys.argv[1], 'r+', libver='latest')\nf.swmr_mode = True\n"
            "f.attrs['status'] = 'running'\nf.flush()\nos._exit(0)\n")
    subprocess.run([sys.executable, "-c", code, str(killed)], check=True, timeout=60)
    with h5py.File(folder / "a.h5", "r") as handle:
        assert handle.attrs["status"] == "completed" and "metrics" in handle
    return folder


def test_the_inputs_hold_every_kind_of_damage_on_every_base_file():
    drawn = {draw(index)[:2] for index in range(INPUTS)}
    assert {kind for kind, _ in drawn} == set(KINDS)
    assert {base for _, base in drawn} == set(range(BASES))
    assert {kind for kind, base in drawn if base == 1} >= {"bytes", "run", "truncate"}  # the slow path, damaged


@pytest.mark.timeout(300)
def test_hundreds_of_hostile_results_files_are_read_or_refused_in_one_line(bases, tmp_path):
    work, saved = tmp_path / "work", tmp_path / "crashes"
    work.mkdir()
    saved.mkdir()
    counts = {"inputs": 0, "read fine": 0, "refused in one line": 0, "crashes": 0, "hangs": 0, "tracebacks": 0,
              "slow": 0, "left behind": 0}
    problems: list[str] = []
    base_data = [open(bases / name, "rb").read() for name in sorted(os.listdir(bases))]
    started = time.monotonic()
    first = 0
    while first < INPUTS:
        process = subprocess.Popen(
            [sys.executable, __file__, str(bases), str(work), str(first), str(INPUTS)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
            cwd=os.path.dirname(__file__),
        )
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in process.stdout] + [lines.put(None)],
                         daemon=True).start()
        done, hung = first, False
        while True:
            try:
                line = lines.get(timeout=HANG_SECONDS)
            except queue.Empty:  # no answer on input `done` for HANG_SECONDS
                process.kill()
                hung = True
                break
            if line is None:
                break
            outcome = json.loads(line)
            done = outcome["index"] + 1
            counts["inputs"] += 1
            counts["read fine"] += outcome["fine"]
            counts["refused in one line"] += outcome["refused"]
            for problem in outcome["bad"]:
                counts["tracebacks" if "traceback" in problem else "left behind"] += 1
                problems.append(f"input {outcome['index']}: {problem}")
            if outcome["seconds"] > SECONDS_PER_INPUT:
                counts["slow"] += 1
                problems.append(f"input {outcome['index']}: {outcome['seconds']:.1f} CPU s")
        err = process.communicate()[1]
        if done >= INPUTS and process.returncode == 0:
            break
        # The child died (a crash) or hung on input `done`: save it, go on from the next one.
        counts["inputs"] += 1
        counts["hangs" if hung else "crashes"] += 1
        culprit = saved / f"input-{done}.h5"
        culprit.write_bytes(hostile(base_data, done))
        problems.append(f"input {done}: {'hang' if hung else f'crash (exit {process.returncode})'}, saved as "
                        f"{culprit}: {err[-500:]}")
        shutil.rmtree(work / str(done), ignore_errors=True)
        first = done + 1
    print(f"\nfuzz (seed {SEED}): {counts['inputs']} inputs in {time.monotonic() - started:.0f} s; "
          + ", ".join(f"{key} {value}" for key, value in counts.items() if key != "inputs"))
    assert counts["inputs"] >= INPUTS
    assert not problems, "\n".join(problems[:40])


if __name__ == "__main__":
    child(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
