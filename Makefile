# SlicerCMR: `make demo` and `make test` each set up .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check
CONSTRAINTS := requirements/constraints.txt
RUN_STAMP  := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
# sh-molli (benchmark comparison only) needs NumPy 1 / SciPy 1.11 / pydicom 2: its own venv
SHMOLLI_VENV  := .venv-shmolli
SHMOLLI_STAMP := $(SHMOLLI_VENV)/.installed

.PHONY: demo test bench venv clean-venv help

help:
	@echo "make demo   set up .venv and run 'cmr demo --out demo_out' on the bundled phantom study"
	@echo "make test   set up .venv with test dependencies and run the pytest suite"
	@echo "make bench  run benchmarks/ and print markdown tables"

$(RUN_STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: the local CPU wheel (an unpinned request pulls CUDA packages)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c $(CONSTRAINTS) -e .
	touch $@

$(TEST_STAMP): $(RUN_STAMP)
	$(PIP) install -q -c $(CONSTRAINTS) -e '.[test]'
	touch $@

venv: $(RUN_STAMP)

demo: $(RUN_STAMP)
	$(BIN)/cmr demo --out demo_out

test: $(TEST_STAMP)
	$(BIN)/python -m pytest

$(SHMOLLI_STAMP): requirements/sh-molli.txt
	test -x $(SHMOLLI_VENV)/bin/python || $(PYTHON) -m venv $(SHMOLLI_VENV)
	# optional: if it cannot be installed, the benchmark says so in its table and goes on
	$(SHMOLLI_VENV)/bin/python -m pip --disable-pip-version-check install -q --no-deps -r requirements/sh-molli.txt \
		&& touch $@ || echo "sh-molli environment not installed; bench_motion reports it as not compared"

bench: $(RUN_STAMP) $(SHMOLLI_STAMP)
	$(BIN)/python -m benchmarks

clean-venv:
	rm -rf $(VENV) $(SHMOLLI_VENV)
