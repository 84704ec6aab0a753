# mmseg-spixreg: the two commands a user needs are `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# What `make lint` checks (settings: setup.cfg; tools pinned in requirements/lint.txt).
LINT_PATHS := mmseg_spixreg tools tests benchmarks configs demo experiments setup.py

.PHONY: install data lint format test demo clean-venv

install:
	bash tools/install_env.sh

lint: install
	$(PY) -m flake8 $(LINT_PATHS)
	$(PY) -m isort --check-only --diff $(LINT_PATHS)
	$(PY) -m yapf --diff -r -p $(LINT_PATHS)

# Rewrites the files in place: imports sorted (isort), code formatted (yapf).
format: install
	$(PY) -m isort $(LINT_PATHS)
	$(PY) -m yapf -i -r -p $(LINT_PATHS)

# CamVid where the configs read it (data/camvid): a link to the team's shared copy when there is
# one (nothing otherwise; docs/data.md says how to put your own there).
data:
	python3 tools/dataset_converters/link_camvid.py ../shared/data/camvid --if-present

# Lint first (flake8, isort, yapf; `make lint` alone), then the suite, one pytest-xdist worker per
# core (TEST_WORKERS=0: in one process); a test file runs whole in one worker (--dist loadfile), so
# a module's fixtures are built once. Each worker gets its share of the cores (tests/conftest.py).
TEST_WORKERS ?= auto
test: lint data
	$(PY) -m pytest tests -q -rs -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

demo: install data
	$(PY) tools/demo.py $(DEMO_ARGS)

clean-venv:
	rm -rf $(VENV)
