# The two commands a newcomer needs: `make run` and `make test`. Both install what they need first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test install lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# First start: seed the sandbox with a synthetic plan (OPENPAYER_SEED_MEMBERS, default 200; 0 = no seeding)
# when it holds no resources yet, and print the test member logins. Production always starts empty.
OPENPAYER_SEED_MEMBERS ?= 200

run: install
	$(VENV)/bin/openpayer db upgrade
	@if [ "$(OPENPAYER_SEED_MEMBERS)" != "0" ]; then \
		$(VENV)/bin/openpayer seed sandbox --members $(OPENPAYER_SEED_MEMBERS) --if-empty --no-migrate \
			|| echo "Seeding the sandbox failed (see above); serving anyway." >&2; \
	fi
	$(VENV)/bin/openpayer serve

test: install
	PY=$(PY) ./scripts/test.sh

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy benchmarks
	$(VENV)/bin/lint-imports --no-cache

format: install
	$(VENV)/bin/ruff check --fix src tests benchmarks
	$(VENV)/bin/ruff format src tests benchmarks

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
