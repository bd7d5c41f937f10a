# The two commands of the README:
#   make figures   set up .venv and regenerate every figure on the embedded default
#   make test      set up .venv and run the test suite
PYTHON ?= python3
VENV ?= .venv
PROFILE ?= default
BIN := $(VENV)/bin

.PHONY: setup figures test lab clean-venv

setup: $(VENV)/.installed

# Reinstall whenever the dependency list changes. pip (not uv/poetry) so that an existing or
# locally available torch build is reused rather than downloaded again.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

figures: setup
	$(BIN)/python run_all.py --profile $(PROFILE)

test: setup
	$(BIN)/python -m pytest

lab: setup
	$(BIN)/jupyter lab notebooks/

clean-venv:
	rm -rf $(VENV)
