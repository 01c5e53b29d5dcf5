# Two commands on a fresh machine with python3 and make: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
UV_VERSION := 0.13.9

.PHONY: demo test lint bench clean-lab

# Dependencies are compiled to bytecode once, here: with PYTHONDONTWRITEBYTECODE set (as in many
# containers) every process would otherwise compile FlowKit, SciPy and pandas afresh on import
# (9 s instead of 3.5 s; each Prefect and Dask worker process imports them). The numba kernels
# are compiled into their cache here too, for the same reason (10 s each process otherwise).
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	$(BIN)/python -c "from gating import compile_kernels; compile_kernels()"
	touch $(STAMP)

# Regenerate the lock after changing dependencies in pyproject.toml.
requirements.lock: pyproject.toml
	test -x $(BIN)/uv || ($(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)")
	$(BIN)/uv pip compile --quiet pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

demo: $(STAMP)
	$(BIN)/cartflow demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python benchmarks/qpcr_bench.py
	$(BIN)/python benchmarks/flow_bench.py
	$(BIN)/python benchmarks/fast_gating_bench.py
	$(BIN)/python benchmarks/latency_bench.py
	$(BIN)/python benchmarks/backfill_bench.py

clean-lab:
	rm -rf lab
