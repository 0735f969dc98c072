# `make run` and `make test` each set up .venv from nothing, then run.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU wheel of torch installs from local disk here; override elsewhere
# (e.g. TORCH_SPEC="torch>=2.1" to keep whatever CUDA build pip picks).
TORCH_SPEC ?= torch==2.13.0

.PHONY: run test setup bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[train,dev]"
	touch $@

setup: $(BIN)/.installed

run: setup
	$(BIN)/python main.py $(ARGS)

test: setup
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: setup
	$(BIN)/python benchmarks/bench_matching.py

clean:
	rm -rf $(VENV) build *.egg-info
