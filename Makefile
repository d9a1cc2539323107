# hpcsoa developer commands. Everything runs inside .venv, created from pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: all demo test lint typecheck pytest test-slow bench serve clean

all: test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## demo: start the embedded emulator (TLS + Basic auth) and drive a real SOA workload through it
demo: $(STAMP)
	$(BIN)/hpcsoa demo $(DEMO_ARGS)

## test: ruff check, ruff format --check, mypy --strict src, then pytest
test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

pytest: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

## bench: codec, emulator and client benchmarks (ratios against plain aiohttp / stdlib in the same run)
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_codec.py
	$(BIN)/python benchmarks/bench_emulator.py
	$(BIN)/python benchmarks/bench_soa.py

serve: $(STAMP)
	$(BIN)/hpcsoa serve

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build dist
