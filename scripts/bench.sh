#!/usr/bin/env bash
# make bench: a throwaway PostgreSQL cluster, the metering scale benchmark against it, cleanup.
#   scripts/bench.sh [--quick | --scale N]      (arguments go to benchmarks/metering_scale.py)
set -euo pipefail
cd "$(dirname "$0")/.."

cluster=".local/pg-bench-$$"
trap 'scripts/pg-cluster.sh destroy "$cluster" >/dev/null 2>&1 || true' EXIT
# fsync off: a cluster that is deleted after the run needs no crash safety. The benchmark
# creates its database and checkpoints as the superuser (ARCADIA_ADMIN_DATABASE_URL) and
# meters as the warehouse login (ARCADIA_DATABASE_URL), which owns that database.
# max_wal_size 8GB: a day at 1M resources writes a few GB of WAL; with the default 1GB the
# measurements would mostly time forced checkpoints.
eval "$(ARCADIA_PG_FSYNC=off ARCADIA_PG_MAX_WAL_SIZE=8GB scripts/pg-cluster.sh start "$cluster")"
export ARCADIA_BENCH_COMMAND="scripts/bench.sh${*:+ $*}"
.venv/bin/python benchmarks/metering_scale.py "$@"
