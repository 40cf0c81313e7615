# The two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: install install-dev demo test lint typecheck unit bench lock clean vendor

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "sqlsage needs Python >= 3.11; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"

# Exact, hash-checked versions from the lock files; the project itself goes in editable, no deps.
$(STAMP): $(BIN)/python requirements.lock pyproject.toml
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

$(DEV_STAMP): $(STAMP) requirements-dev.lock
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	@touch $@

install: $(STAMP)

install-dev: $(DEV_STAMP)

# The tools and the agent on the bundled sample, then the server on it (Ctrl-C stops it).
demo: install
	$(BIN)/sqlsage demo
	$(BIN)/sqlsage serve --db sample --model builtin

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install-dev
	$(BIN)/mypy

unit: install-dev
	$(BIN)/pytest

test: lint typecheck unit

bench: install-dev
	$(BIN)/python benchmarks/validate_throughput.py
	$(BIN)/python benchmarks/run_sql_overhead.py
	$(BIN)/python benchmarks/cli_cold_start.py
	$(BIN)/python benchmarks/schema_linking.py
	$(BIN)/python benchmarks/index_perf.py
	$(BIN)/python benchmarks/server_load.py
	$(BIN)/python benchmarks/agent_overhead.py
	$(BIN)/python benchmarks/builtin_accuracy.py
	$(BIN)/python benchmarks/ui_weight.py
	$(BIN)/python benchmarks/mcp_latency.py
	$(BIN)/python benchmarks/eval_scoring.py
	$(BIN)/python benchmarks/eval_runner_overhead.py

# Re-fetch the chat UI's vendored chart libraries (server/static/vendor/README.md) from npm.
VENDOR := server/static/vendor
vendor:
	rm -rf vendor-build && mkdir -p vendor-build
	cd vendor-build && npm init -y >/dev/null && npm install --silent --no-audit --no-fund \
		vega@5.33.0 vega-lite@5.21.0 vega-embed@6.29.0
	cp vendor-build/node_modules/vega/build/vega.min.js \
	   vendor-build/node_modules/vega-lite/build/vega-lite.min.js \
	   vendor-build/node_modules/vega-embed/build/vega-embed.min.js $(VENDOR)/
	sed -i '/^\/\/# sourceMappingURL=/d' $(VENDOR)/*.min.js
	rm -rf vendor-build

# Regenerate the locks after changing dependencies in pyproject.toml.
lock: install-dev
	$(BIN)/pip install --quiet "uv==0.13.9"
	$(BIN)/uv pip compile pyproject.toml --generate-hashes --extra build --python-version 3.11 -q -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra build --generate-hashes --python-version 3.11 -q -o requirements-dev.lock

clean:
	rm -rf $(VENV) .sqlsage .pytest_cache .mypy_cache .ruff_cache
