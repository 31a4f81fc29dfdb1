# jaxpose set-up commands. Both work on a fresh machine with only Python 3.11 (and make).
#   make run    install jaxpose and run the main job (MotionAGFormer-XS on the embedded deepmimic data)
#   make test   install jaxpose with its test extras, lint (ruff check + format --check), run the suite
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
VENV ?= .venv
PY := $(VENV)/bin/python
WORKDIR ?= runs/main

.PHONY: install install-test run test lint clean

$(VENV)/bin/activate:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), sys.version' 2>/dev/null || { echo "jaxpose needs Python >= 3.11 (found: '$(PYTHON)'); set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

install: $(VENV)/bin/activate
	$(PY) -m pip install -q -e .

install-test: $(VENV)/bin/activate
	$(PY) -m pip install -q -e '.[test,torch]'

run: install
	$(VENV)/bin/jaxpose main --workdir $(WORKDIR)

LINT_PATHS := jaxpose configs tfds_builders tests experiments

test: install-test
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(PY) -m pytest -q -n 2 --dist loadgroup tests

lint: install-test
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)

clean:
	rm -rf $(VENV) runs
