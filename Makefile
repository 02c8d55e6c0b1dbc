# glyphlab: `make run` and `make test` work from a fresh clone (they create .venv and install).
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test bench gpu-check clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev,postgres,ray]"
	touch $(STAMP)

run: install
	$(PY) run.py model=cnn data=runes

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) -m benchmarks

# Where a CUDA GPU is present: the default run on it (bf16 where supported, online augmentation on the
# GPU) and training img/s next to the CPU's; elsewhere it says so and exits 0 (benchmarks/gpu_check.py).
gpu-check: install
	$(PY) -m benchmarks.gpu_check

clean:
	rm -rf outputs multirun .pytest_cache
