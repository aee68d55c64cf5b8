#!/usr/bin/env bash
# Run the whole suite on SQLite, then again on PostgreSQL when one is reachable (CI makes it reachable).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PG_URL=${OPENPAYER_TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/openpayer_test}
export OPENPAYER_TEST_DATABASE_URL=$PG_URL

echo "== lint and types"
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/mypy
.venv/bin/mypy benchmarks
echo "== import contracts (imports point down; docs/architecture.md)"
.venv/bin/lint-imports --no-cache

echo "== test suite on SQLite"
OPENPAYER_TEST_BACKEND=sqlite "$PY" -m pytest -n 2 -q "$@"

if "$PY" - "$PG_URL" <<'PYEOF'
import sys
import psycopg
url = sys.argv[1].replace("postgresql+psycopg://", "postgresql://")
head, _, _ = url.rpartition("/")
try:
    psycopg.connect(f"{head}/postgres", connect_timeout=3).close()
except Exception as exc:
    print(f"PostgreSQL is not reachable ({type(exc).__name__}); skipping the PostgreSQL run")
    sys.exit(1)
PYEOF
then
  echo "== test suite on PostgreSQL"
  OPENPAYER_TEST_BACKEND=postgresql "$PY" -m pytest -n 2 -q "$@"
elif [ "${CI:-}" = "true" ]; then
  echo "CI must run the PostgreSQL suite, but PostgreSQL is not reachable" >&2
  exit 1
fi
