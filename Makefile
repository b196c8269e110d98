# The two commands: `make run` and `make test`. Both set everything up from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export GOVERN_HOME ?= $(CURDIR)/instance

.PHONY: run test lint format bench clean install install-test translations

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e '.[postgres]'
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[postgres,test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: install
	$(BIN)/govern init
	$(BIN)/govern demo
	$(BIN)/govern serve --host $(HOST) --port $(PORT)

# The suite runs on every core (pytest-xdist), two workers per core: much of it waits on a
# database, a browser or a served app, and the other worker of a core runs meanwhile (on 2 cores:
# 7 min 45 s, where one worker per core took 8 min 45 s; 15 min 19 s on a day the same kind of
# machine served a bare Flask route at about half the speed). Each worker has its own databases and
# ports; an idle worker takes tests queued for a busy one (worksteal), so the slow ones (the
# fuzzer, the browser walks) do not wait behind each other at the end.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) * 2 )))
test: install-test
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Refresh the Chinese catalog from the pages' messages and compile it (the .mo is committed, so
# installing needs no compile step; a test checks the two agree and nothing is left untranslated).
CATALOG := govern/web/translations
translations: install-test
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --no-location --sort-output \
		--omit-header -o $(CATALOG)/messages.pot .
	$(BIN)/pybabel update -i $(CATALOG)/messages.pot -d $(CATALOG) -l zh_Hans_CN \
		--no-fuzzy-matching --ignore-obsolete --width 100
	$(BIN)/pybabel compile -d $(CATALOG) -l zh_Hans_CN --statistics
	rm $(CATALOG)/messages.pot

bench: install-test
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache
