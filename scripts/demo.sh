#!/usr/bin/env bash
# make demo: private PostgreSQL, migrations, demo inventory, its whole history through
# yesterday metered in one partition-range run (the partitions start at its first day), the
# quotes printed, then the Dagster UI.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

eval "$(scripts/pg-cluster.sh start .local/pg)"

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

arcadia-pipeline db upgrade
arcadia-pipeline demo seed --days "$DEMO_DAYS" --end-date "$today"

# Every day of the history through yesterday (UTC), as one single-run backfill.
echo "metering $first...$last in one run (partitions from $first)"
start=$(date +%s)
dg launch --job daily_metering_job --partition-range "$first...$last" \
  >"$root/.local/demo-materialize.log" 2>&1 \
  || { tail -40 "$root/.local/demo-materialize.log"; exit 1; }
echo "metered $first...$last in $(( $(date +%s) - start ))s (log: .local/demo-materialize.log)"
echo
arcadia-pipeline quotes --as-of "$last"
echo

port=${ARCADIA_UI_PORT:-3000}
echo "Dagster UI (webserver + daemon): open http://127.0.0.1:$port  (Ctrl-C stops it)"
echo "Warehouse: postgresql://warehouse@127.0.0.1:$ARCADIA_PG_PORT/arcadia (password in .local/pg/warehouse.password)"
# `dg dev` on workspace.yaml (code location `arcadia_pipeline`), started from DAGSTER_HOME:
# Dagster warns about a dagster.yaml in the current folder unless that folder is
# DAGSTER_HOME, and a bare `dg dev` always runs from the project root, where the repo's
# dagster.yaml is.
cd "$DAGSTER_HOME"
exec dg dev -w "$root/workspace.yaml" -h 127.0.0.1 -p "$port"
