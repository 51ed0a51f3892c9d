#!/usr/bin/env bash
# make bench: throwaway PostgreSQL clusters, the metering scale benchmark against them, cleanup.
#   scripts/bench.sh [--quick | --scale N] [--no-citus]  (arguments go to metering_scale.py)
#
# Two clusters: a single node, where every measurement runs, and a Citus coordinator with
# two workers, where (a)'s day runs again for the Citus column (--no-citus: not started).
set -euo pipefail
cd "$(dirname "$0")/.."

single=".local/pg-bench-$$"
citus=".local/pg-bench-citus-$$"
trap 'for c in "$single" "$citus"; do scripts/pg-cluster.sh destroy "$c" >/dev/null 2>&1 || true; done' EXIT
# fsync off: a cluster that is deleted after the run needs no crash safety. The benchmark
# creates its database and checkpoints as the superuser (ARCADIA_ADMIN_DATABASE_URL) and
# meters as the warehouse login (ARCADIA_DATABASE_URL), which owns that database.
# max_wal_size 8GB: a day at 1M resources writes a few GB of WAL; with the default 1GB the
# measurements would mostly time forced checkpoints.
tuning=(ARCADIA_PG_FSYNC=off ARCADIA_PG_MAX_WAL_SIZE=8GB)
# The Citus cluster first, as scripts/test.sh: building the extension may upgrade the
# system's PostgreSQL minor, which a server started before it would then run beside. Its
# URLs go to the benchmark as ARCADIA_BENCH_CITUS_*: the single node's take the usual names.
if [[ " $* " != *" --no-citus "* ]]; then
  eval "$(env "${tuning[@]}" ARCADIA_PG_CITUS=1 scripts/pg-cluster.sh start "$citus")"
  export ARCADIA_BENCH_CITUS_URL=$ARCADIA_DATABASE_URL
  export ARCADIA_BENCH_CITUS_ADMIN_URL=$ARCADIA_ADMIN_DATABASE_URL
  export ARCADIA_BENCH_CITUS_WORKERS=$ARCADIA_CITUS_WORKERS
  unset ARCADIA_CITUS_WORKERS
fi
eval "$(env "${tuning[@]}" scripts/pg-cluster.sh start "$single")"
export ARCADIA_BENCH_COMMAND="scripts/bench.sh${*:+ $*}"
.venv/bin/python benchmarks/metering_scale.py "$@"
