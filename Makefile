# The two commands: `make html` builds the site with the gate on; `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.vmxkb-installed
SPHINXOPTS ?= -W --keep-going -q

.PHONY: html test clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[docs,test]'
	touch $(STAMP)

html: $(STAMP)
	$(BIN)/sphinx-build $(SPHINXOPTS) -c . -b html docs _build/html

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf _build
