# glyphlab: `make run` and `make test` work from a fresh clone (they create .venv and install).
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install install-test run test test-fast lint bench gpu-check clean

TEST_STAMP := $(VENV)/.installed-test-stamp

# install: what a run needs (glyphlab and its dependencies, editable); the test extras come with `make test`.
install: $(STAMP)

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $(STAMP)

# pytest and the browser, PostgreSQL and Ray the tests drive
install-test: $(TEST_STAMP)

$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install -q -e ".[dev,postgres,ray]"
	touch $(TEST_STAMP)

run: install
	$(PY) run.py model=cnn data=runes

# One pytest worker per core (pytest-xdist), each test file on one worker so a module's shared fixtures
# (a trained model) are built once; tests/conftest.py gives each worker, and what it starts, one thread.
PYTEST := $(PY) -m pytest -q -n auto --dist loadfile

# test: what CI runs (.ci/run): the lint, then every test, and the 15 slowest.
test: lint
	$(PYTEST) --durations=15

# test-fast: every test but those marked slow (processes, servers, the browser, longer training).
test-fast: install-test
	$(PYTEST) -m "not slow"

# lint: ruff's checks, the layout rules as the format check ([tool.ruff] in pyproject.toml says why not ruff format).
lint: install-test
	$(PY) -m ruff check .

bench: install
	$(PY) -m benchmarks

# Where a CUDA GPU is present: the default run on it (bf16 where supported, online augmentation on the
# GPU) and training img/s next to the CPU's; elsewhere it says so and exits 0 (benchmarks/gpu_check.py).
gpu-check: install
	$(PY) -m benchmarks.gpu_check

clean:
	rm -rf outputs multirun .pytest_cache
