# The two commands of the quick start: `make demo` and `make test`.
# Both create .venv and install the project into it on first use. CI runs `make test` once per
# supported Python, e.g. `make test PYTHON=python3.12 VENV=.venv-3.12` (.ci/run).
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin

.PHONY: demo serve test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,speed]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/wechat-bot demo

serve: $(BIN)/.installed
	$(BIN)/wechat-bot serve

test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(BIN)/.installed
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .venv-3.* .mypy_cache .pytest_cache .ruff_cache
