VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

MIN_VENV := .venv-min
MIN_PY := $(MIN_VENV)/bin/python
MIN_STAMP := $(MIN_VENV)/.installed

.PHONY: venv demo test test-min lint bench clean

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

# The lowest versions pyproject.toml declares (direct dependencies and the test extra), in a venv
# of their own, running the tests that cross a real kernel, the widgets, nbclient and the collector.
$(MIN_STAMP): pyproject.toml $(STAMP)
	rm -rf $(MIN_VENV)
	$(VENV)/bin/uv venv --quiet --seed --no-python-downloads --python python3 $(MIN_VENV)
	$(VENV)/bin/uv pip install --quiet --python $(MIN_PY) --resolution lowest-direct -e '.[test]'
	touch $(MIN_STAMP)

test-min: $(MIN_STAMP)
	$(MIN_PY) -m pytest -n 2 -p no:cacheprovider tests/test_kernel_*.py tests/notebook/test_autoload.py \
		tests/notebook/test_panel.py tests/test_demo.py tests/collector

lint: $(STAMP)
	$(PY) -m ruff check bugsnag_ipython tests notebooks benchmarks
	$(PY) -m mypy

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,browser,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) $(MIN_VENV) .demo artifacts
