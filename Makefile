# The README's commands. Everything runs from .venv, which `make install` creates.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install lint test demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
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
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
