# Quick start: `make demo` (set up and run a small MPI job), `make test` (set up and run the tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-loaded setup bench bench-quick readme-methods clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[mpich,plot,test]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	rm -f results/demo.h5
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/mpiexec -n 5 $(BIN)/asyncopt run jobs/demo.toml --output results/demo.h5
	$(BIN)/asyncopt summary results/demo.h5

test: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q

# The suite on a loaded machine: 2 x nproc busy loops (tests/load.sh; LOAD_FACTOR=4 for more) while it runs.
test-loaded: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" sh tests/load.sh $(BIN)/python -m pytest -q

bench: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python benchmarks/run.py

bench-quick: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python benchmarks/run.py --quick --output benchmarks/RESULTS-quick.md

# README's method table is generated from the method registry (tests/test_cli.py checks it).
readme-methods: $(STAMP)
	$(BIN)/python -c "import re, pathlib, subprocess; readme = pathlib.Path('README.md'); table = subprocess.run(['$(BIN)/asyncopt', 'methods', '--markdown'], capture_output=True, text=True, check=True).stdout.strip(); text = readme.read_text(); begin = text.index('<!-- methods:begin'); begin = text.index('\n', begin) + 1; end = text.index('<!-- methods:end'); readme.write_text(text[:begin] + table + '\n' + text[end:])"

clean:
	rm -rf $(VENV) results .pytest_cache
