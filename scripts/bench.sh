#!/usr/bin/env bash
# make bench: a throwaway PostgreSQL cluster, the metering scale benchmark against it, cleanup.
#   scripts/bench.sh [--quick | --scale N]      (arguments go to benchmarks/metering_scale.py)
set -euo pipefail
cd "$(dirname "$0")/.."

cluster=".local/pg-bench-$$"
trap 'scripts/pg-cluster.sh destroy "$cluster" >/dev/null 2>&1 || true' EXIT
# fsync off: a cluster that is deleted after the run needs no crash safety. The owner login
# (ARCADIA_DATABASE_URL, not a superuser) may create databases here: the benchmark's database.
eval "$(ARCADIA_PG_FSYNC=off ARCADIA_PG_OWNER_CREATEDB=1 scripts/pg-cluster.sh start "$cluster")"
export ARCADIA_BENCH_COMMAND="scripts/bench.sh${*:+ $*}"
.venv/bin/python benchmarks/metering_scale.py "$@"
