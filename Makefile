VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: venv demo test lint bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,browser]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) notebooks/run_demo.py

test: $(STAMP)
	$(PY) -m ruff check bugsnag_ipython tests notebooks benchmarks
	$(PY) -m mypy
	$(PY) -m pytest -n 2 tests

lint: $(STAMP)
	$(PY) -m ruff check bugsnag_ipython tests notebooks benchmarks
	$(PY) -m mypy

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,browser,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) .demo artifacts
