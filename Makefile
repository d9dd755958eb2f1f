# The two commands: `make html` builds the site with the gate on; `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.vmxkb-installed
SPHINXOPTS ?= -W --keep-going -q

.PHONY: html test clean graphviz serve

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[docs,test]'
	touch $(STAMP)

# Graphviz draws the needflow diagrams: install it from Debian's packages when we can,
# else say plainly what is missing.
graphviz:
	@command -v dot >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing graphviz (apt-get)"; \
	    apt-get install -y -q graphviz >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q graphviz >/dev/null; }; \
	  else echo "vmxkb: Graphviz 'dot' is missing: install the graphviz package (apt-get install graphviz)"; exit 1; fi; }

html: $(STAMP) graphviz
	$(BIN)/sphinx-build $(SPHINXOPTS) -c . -b html docs _build/html

test: $(STAMP) graphviz
	$(BIN)/python -m pytest

# Live preview: rebuild on change and serve on http://127.0.0.1:8000/
serve: $(STAMP) graphviz
	$(BIN)/sphinx-autobuild $(SPHINXOPTS) -c . -b html docs _build/html --host 127.0.0.1 --port 8000 --watch rules --watch conf.py

clean:
	rm -rf _build
