#!/usr/bin/env bash
# make demo: private PostgreSQL, migrations, demo inventory, its whole history through
# yesterday metered in one partition-range run (the partitions start at its first day), the
# quotes printed, then the Dagster UI.
#
# The console gets one line per stage and the quotes; each stage's output goes to a log file
# under .local/logs (uv-sync, pg-cluster, db-upgrade, demo-seed, demo-materialize,
# dagster-dev), and a failing stage prints its log's tail and ends the demo non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
logs=.local/logs
mkdir -p "$logs"
rm -f .local/demo-materialize.log  # where the metering log was before .local/logs

# The UI's port, checked first: busy, it would leave dg dev running without its webserver
# (scripts/dagster-dev.sh also stops it then, but only after the whole metering run).
port=${ARCADIA_UI_PORT:-3000}
if ! python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the webserver binds
s.bind(("127.0.0.1", int(sys.argv[1])))' "$port" 2>/dev/null; then
  echo "port $port (the Dagster UI's) is in use: ARCADIA_UI_PORT=<a free port> make demo" >&2
  exit 1
fi

# Made by the Makefile's venv target (scripts/uv.sh sync --frozen, logged there).
echo "venv ready: .venv, synced from uv.lock"

# CITUS=1 (make demo CITUS=1): a Citus coordinator and two workers under .local/pg-citus
# (Citus built from ../shared/citus when missing), and `db upgrade` distributes the schema.
cluster=.local/pg
if [ "${CITUS:-0}" = 1 ]; then
  cluster=.local/pg-citus
  export ARCADIA_PG_CITUS=1
fi

# The cluster's export lines on stdout; its messages (an apt install of PostgreSQL, initdb,
# a Citus build) to the log.
cluster_env=$(scripts/pg-cluster.sh start "$cluster" 2>"$logs/pg-cluster.log") || {
  echo "PostgreSQL did not start; last 40 lines of $logs/pg-cluster.log:" >&2
  tail -n 40 "$logs/pg-cluster.log" >&2
  exit 1
}
eval "$cluster_env"
if [ -n "${ARCADIA_CITUS_WORKERS:-}" ]; then
  echo "Citus up: coordinator $cluster on 127.0.0.1:$ARCADIA_PG_PORT, workers $ARCADIA_CITUS_WORKERS"
else
  echo "PostgreSQL up: cluster $cluster on 127.0.0.1:$ARCADIA_PG_PORT"
fi

# The instance: DAGSTER_HOME holds a copy of the repo's dagster.yaml (the one source, copied
# afresh on every start; an old symlink is replaced).
export DAGSTER_HOME="$root/.local/dagster_home"
mkdir -p "$DAGSTER_HOME"
rm -f "$DAGSTER_HOME/dagster.yaml"
cp "$root/dagster.yaml" "$DAGSTER_HOME/dagster.yaml"

# The project's virtualenv, activated: `dg` checks that the active one is the project's.
export VIRTUAL_ENV="$root/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"

# The seed's history: DEMO_DAYS days up to today 00:00 UTC. Its first day is the first
# daily partition (ARCADIA_METERING_START_DATE, for `dg launch` and the UI alike), so every
# partition has data and the plots start where the data does.
DEMO_DAYS=75
read -r today first last < <(python -c '
import sys
from datetime import datetime, timedelta, UTC
today = datetime.now(UTC).date()
print(today, today - timedelta(days=int(sys.argv[1])), today - timedelta(days=1))' "$DEMO_DAYS")
export ARCADIA_METERING_START_DATE="$first"
# A shell pointed at the demo (README, CLI) reads the same first day from here.
echo "ARCADIA_METERING_START_DATE=$first" >"$root/.local/demo.env"

scripts/logged.sh "$logs/db-upgrade.log" arcadia-pipeline db upgrade
echo "migrations applied (log: $logs/db-upgrade.log)"
scripts/logged.sh "$logs/demo-seed.log" \
  arcadia-pipeline demo seed --days "$DEMO_DAYS" --end-date "$today"
# The seed's summary, its last line ("seeded 40 deployments (...) from FIRST to TODAY").
tail -n 1 "$logs/demo-seed.log"

# Every day of the history through yesterday (UTC), as one single-run backfill.
echo "metering $first...$last in one run (partitions from $first)"
start=$(date +%s)
scripts/logged.sh "$logs/demo-materialize.log" \
  dg launch --job daily_metering_job --partition-range "$first...$last"
echo "metered $first...$last in $(($(date +%s) - start))s (log: $logs/demo-materialize.log)"
echo
arcadia-pipeline quotes --as-of "$last"
echo

echo "Dagster UI (webserver + daemon) starting on http://127.0.0.1:$port  (Ctrl-C stops it)"
echo "Warehouse: postgresql://warehouse@127.0.0.1:$ARCADIA_PG_PORT/arcadia (password in $cluster/warehouse.password)"
# `dg dev` in the foreground from DAGSTER_HOME, its output in the log (it says where).
exec scripts/dagster-dev.sh "$logs/dagster-dev.log" -h 127.0.0.1 -p "$port"
