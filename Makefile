# `make run` and `make test` each set up .venv from nothing, then run.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch goes into the same pip call as the package, pinned by TORCH_SPEC, so pip
# never chooses a torch build by itself. The default is the CPU wheel this project
# is tested with (installed from local disk here). With a CUDA build of torch
# already in .venv, keep it: make run TORCH_SPEC=torch (see the README).
TORCH_SPEC ?= torch==2.13.0

.PHONY: run test setup setup-test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Running needs the package and its dependencies, nothing else.
$(BIN)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q "$(TORCH_SPEC)" -e .
	touch $@

# Testing adds the test extras ([dev]) and the reconstruction extra ([sfm]: pycolmap, h5py),
# so the COLMAP and hloc export tests run instead of being skipped.
$(BIN)/.installed-test: $(BIN)/.installed-run
	$(BIN)/pip install -q "$(TORCH_SPEC)" -e ".[dev,sfm]"
	touch $@

setup: $(BIN)/.installed-run

setup-test: $(BIN)/.installed-test

run: setup
	$(BIN)/python main.py $(ARGS)

test: setup-test
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: setup
	$(BIN)/python benchmarks/bench_matching.py --weights resources/models/default.safetensors

clean:
	rm -rf $(VENV) build *.egg-info
