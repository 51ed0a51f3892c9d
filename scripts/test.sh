#!/usr/bin/env bash
# make test: a throwaway PostgreSQL cluster, the whole test suite against it, then cleanup.
set -euo pipefail
cd "$(dirname "$0")/.."

# The browser test drives Debian's Chromium (never a downloaded browser).
if ! command -v chromium >/dev/null 2>&1 && [ -z "${ARCADIA_SKIP_BROWSER_INSTALL:-}" ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi

cluster=".local/pg-test-$$"
trap 'scripts/pg-cluster.sh destroy "$cluster" >/dev/null 2>&1 || true' EXIT
# fsync off: a cluster that is deleted after the run needs no crash safety. The tests make
# their databases as the superuser (ARCADIA_ADMIN_DATABASE_URL).
eval "$(ARCADIA_PG_FSYNC=off scripts/pg-cluster.sh start "$cluster")"
# The fault-injection tests stop and restart this cluster (a database outage).
export ARCADIA_TEST_PG_CLUSTER="$cluster"
.venv/bin/python -m pytest "$@"
