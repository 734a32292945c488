# Two commands do all the set-up on a machine with only python3 and pip:
#   make demo   create .venv, install clvmodels, run the whole job on the bundled CDNOW data
#   make test   the same with the test extras, then the full test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo-output

.PHONY: demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[demo]"
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.installed

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/clvmodels demo -o $(DEMO_DIR)

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=15

bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/bench_rfm.py
	$(BIN)/python benchmarks/bench_fit.py
	$(BIN)/python benchmarks/bench_bayes.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) build *.egg-info
