# mmseg-spixreg: the two commands a user needs are `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install test demo clean-venv

install:
	bash tools/install_env.sh

test: install
	$(PY) -m pytest tests -q -rs $(PYTEST_ARGS)

demo: install
	$(PY) tools/demo.py $(DEMO_ARGS)

clean-venv:
	rm -rf $(VENV)
