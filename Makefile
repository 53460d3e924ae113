# Two commands on a fresh machine with Python 3.11 and pip:
#   make demo   — create .venv, install what the demo runs, run the offline demo end to end
#   make test   — the same install plus the test extra (pytest, SAELens, the SLURM plugin), run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test install install-test lint clean

# The package and what the workflow runs (pyproject's dependencies), nothing else: the demo's install.
$(BIN)/snakemake: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e .
	touch $@

# The test extra on top: pytest and its plugins, the SLURM executor plugin, and SAELens (which pulls
# transformer-lens, wandb, datasets, plotly and more) for the interop tests. Only `make test` needs it.
$(VENV)/.test-extra: $(BIN)/snakemake
	$(BIN)/pip install -e ".[test]"
	touch $@

install: $(BIN)/snakemake

install-test: $(VENV)/.test-extra

demo: install
	$(BIN)/snakemake --profile profiles/demo

test: install-test
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q -n 2 --dist loadgroup --no-loadscope-reorder

lint: install
	$(BIN)/snakemake --lint --configfile profiles/demo/demo.yaml

clean:
	rm -rf results .snakemake
