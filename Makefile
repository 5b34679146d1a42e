# The few commands users type. Everything installs from nothing: a venv with
# requirements-dev.txt, and Azurite from package-lock.json (npm ci).
#   make demo   run the main job end to end on the offline stack (Azurite + emulator + devhost)
#   make test   lint, type-check and run the whole test suite (starts its own Azurite)
#   make bench  every figure of docs/performance.md (`python -m bench 1 4`: some of them)
#   make contract-test  the contract cases against a real endpoint (AML_LIVE_ENDPOINT_URI and
#               AML_WORKSPACE_ID; Azure credential from the environment); skips cleanly offline

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed-dev
NODE_STAMP := node_modules/.installed

.PHONY: install demo test lint fmt typecheck unit bench contract-test clean help

help:
	@echo "make demo | make test | make unit | make bench | make contract-test | make lint | make fmt | make clean"

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm not found: install Node.js >= 18 (see README, Troubleshooting)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: $(STAMP) $(NODE_STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy batch_endpoint batch_runs aml_emulator
	$(BIN)/mypy function_app.py orchestrators activities triggers devhost scripts bench tests

test: install lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider

# The sub-second loop: pure unit tests only (no Azurite, no emulator, no devhost processes).
unit: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider -m "not slow" tests/unit

# The same cases make test runs against the emulator, here against the real service (opt-in).
contract-test: $(STAMP)
	$(BIN)/pytest -m live tests/contract

demo: install
	$(PY) -m scripts.demo

bench: install
	$(PY) -m bench

clean:
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache
