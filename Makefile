# Two commands on a fresh machine with Python 3.11 and pip:
#   make demo   — create .venv, install, run the offline demo end to end
#   make test   — create .venv, install, run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test install lint clean

$(BIN)/snakemake: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e ".[test]"
	touch $@

install: $(BIN)/snakemake

demo: install
	$(BIN)/snakemake --profile profiles/demo

test: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q -n 2 --dist loadgroup

lint: install
	$(BIN)/snakemake --lint --configfile profiles/demo/demo.yaml

clean:
	rm -rf results .snakemake
