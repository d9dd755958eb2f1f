# The two commands: `make html` builds the site with the gate on; `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.vmxkb-installed
SPHINXOPTS ?= -W --keep-going -q

.PHONY: html test clean graphviz serve breakages bench fuzz mutation

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

# Every generated gate breakage (tests/breakages.py), each in a clean and an incremental
# build, on 2 trees in parallel; `make test` runs a sample of one. Results go to
# tests/breakage_runs/<fingerprint>.jsonl and docs/_generated/breakage-records.md. BREAKAGE_ARGS=--resume etc.
breakages: $(STAMP) graphviz
	$(BIN)/python tests/breakages.py -j 2 $(BREAKAGE_ARGS)

# Speed, side by side with its references (bench/run.py); writes bench/latest.json and
# docs/_generated/bench-latest.md, which docs/bench.md includes. BENCH_ARGS='--runs 5' etc.
bench: $(STAMP) graphviz
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Live preview: rebuild on change and serve on http://127.0.0.1:8000/
serve: $(STAMP) graphviz
	$(BIN)/sphinx-autobuild $(SPHINXOPTS) -c . -b html docs _build/html --host 127.0.0.1 --port 8000 --watch rules --watch conf.py

clean:
	rm -rf _build

# A million fuzz inputs into every reader (tests/fuzz_long.py); counterexamples are saved in
# tests/fuzz_regressions/ and replayed by make test. FUZZ_ARGS='--inputs 100000' etc.
fuzz: $(STAMP)
	$(BIN)/python tests/fuzz_long.py $(FUZZ_ARGS)

# Mutation score of the rules' scenarios and the KVM models' checks (rules/vmxkb/mutants.py):
# refreshes docs/_generated/mutation.{json,md}, the fingerprinted results every build reuses
# where they are current (the gate fails on any undocumented survivor: docs/mutation.md).
# `make test` checks a sample against a fresh run (tests/test_mutation.py).
mutation: $(STAMP)
	$(BIN)/python -m vmxkb.mutants --json docs/_generated/mutation.json --md docs/_generated/mutation.md
